"""Windowed inference of long videos: overlapping windows whose queries are linked into tracks.

The original (and :class:`mask2former_video.VideoMaskFormer`) runs the whole video as one clip:
the queries attend to every frame at once, which is what its numbers are measured with, and the
memory grows with the video's length (see ``VideoMaskFormer``'s docstring). :class:`WindowedVideoInference`
bounds it: the video is cut into windows of ``window`` frames that overlap by ``overlap`` frames;
the model (backbone, pixel decoder, video decoder) runs on one window at a time; the N queries of
a window are linked to those of the previous window by a one-to-one matching of their masks on the
shared frames (:func:`link_queries`, soft dice on the sigmoid masks, Hungarian); a linked track's
class logits are averaged over the windows it spans and its mask logits are averaged on the shared
frames. The tracks then go through the same top-10 selection and mask resizing as the one-clip
inference (:class:`~mask2former_video.inference.VideoInstancePostProcessor`).

What differs from one clip: a query sees only its window's frames (an object that changes or
hides for longer than a window is linked by its mask in the overlap only, and a wrong link
switches identities); the class score is the mean of the windows' logits; the masks of the shared
frames are averages. What is kept in memory besides one window's activations: every query's mask
logits at 1/4 resolution for all frames (N x T x H/4 x W/4 floats) and the output tubes.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from mask_former.modeling.transformer.final_predictions import final_predictions_only

__all__ = ["WindowedVideoInference", "link_queries", "window_starts"]


def window_starts(num_frames: int, window: int, overlap: int) -> List[Tuple[int, int]]:
    """(start, end) frame ranges of the windows covering ``num_frames`` frames: windows of ``window``
    frames, each starting ``window - overlap`` frames after the previous; the last one ends at the
    last frame (it may overlap more). One window when the video is not longer than ``window``.

    Raises:
        ValueError: ``window`` < 1, or ``overlap`` not in [1, window - 1] when there are several windows.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    if num_frames <= window:
        return [(0, num_frames)]
    if not 1 <= overlap < window:
        raise ValueError(f"overlap must be in [1, window - 1] = [1, {window - 1}] to link windows, got {overlap}")
    ranges, start = [], 0
    while start + window < num_frames:
        ranges.append((start, start + window))
        start += window - overlap
    ranges.append((num_frames - window, num_frames))
    return ranges


def link_queries(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Which query of the current window continues each track of the previous one.

    Args:
        previous: float (N, F, h, w) the tracks' mask logits on the F shared frames.
        current: float (N, F, h, w) the current window's queries' mask logits on the same frames.

    Returns:
        int64 (N,) ``perm``: ``current[perm[i]]`` continues track i (the one-to-one assignment that
        maximizes the summed soft dice ``2 |a b| / (|a| + |b|)`` of the sigmoid masks).
    """
    a = previous.flatten(1).sigmoid()
    b = current.flatten(1).sigmoid()
    dice = 2 * (a @ b.T) / (a.sum(1)[:, None] + b.sum(1)[None, :]).clamp(min=1e-6)
    rows, cols = linear_sum_assignment((-dice).cpu().numpy())
    perm = torch.empty(len(rows), dtype=torch.int64)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.int64)
    return perm


class WindowedVideoInference:
    """A video model run window by window, its queries linked into tracks (module docstring).

    Args:
        model: a :class:`~mask2former_video.VideoMaskFormer` in eval mode (its ``backbone``,
            ``sem_seg_head``, ``preprocess_image`` and ``postprocessor`` are used).
        window: frames per window (>= 1). overlap: frames shared by consecutive windows (>= 1 when
            the video is longer than a window).

    ``__call__(video)``: the model's input dict of one video (``"image"``: T uint8 (3, H, W)
    frames, optional ``"height"`` / ``"width"``) -> the model's output format
    (``{"image_size", "pred_scores", "pred_labels", "pred_masks"}``). Call it under
    ``torch.inference_mode()``.

    Raises:
        ValueError: see :func:`window_starts`.
    """

    def __init__(self, model: nn.Module, *, window: int, overlap: int):
        if window > 1:
            window_starts(window + 1, window, overlap)  # checks the arguments
        elif window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        self.model = model
        self.window = int(window)
        self.overlap = int(overlap)

    def _run_window(self, frames: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, Tuple, Tuple]:
        model = self.model
        images = model.preprocess_image([{"image": list(frames)}])
        with final_predictions_only(model.sem_seg_head):
            outputs = model.sem_seg_head(model.backbone(images.tensor))
        logits = outputs["pred_logits"][0].float()
        masks = outputs["pred_masks"][0].float()
        return logits, masks, tuple(images.tensor.shape[-2:]), tuple(images.image_sizes[0])

    def __call__(self, video: dict) -> dict:
        frames = video["image"]
        ranges = window_starts(len(frames), self.window, self.overlap)
        logits_sum, windows_seen, tube = None, 0, []  # tube: per frame (N, h, w) mask logits of the tracks
        padded_size = image_size = None
        for start, end in ranges:
            logits, masks, padded_size, image_size = self._run_window(frames[start:end])
            if logits_sum is None:
                logits_sum, windows_seen = logits, 1
                tube = list(masks.unbind(1))
                continue
            shared = len(tube) - start  # frames of this window already in the tube
            perm = link_queries(torch.stack(tube[start:], dim=1), masks[:, :shared])
            logits, masks = logits[perm], masks[perm]
            logits_sum, windows_seen = logits_sum + logits, windows_seen + 1
            for f in range(shared):
                tube[start + f] = (tube[start + f] + masks[:, f]) / 2
            tube.extend(masks[:, shared:].unbind(1))
        height = video.get("height", image_size[0])
        width = video.get("width", image_size[1])
        with torch.autocast(device_type=logits_sum.device.type, enabled=False):
            return self.model.postprocessor(logits_sum / windows_seen, torch.stack(tube, dim=1), padded_size,
                                            image_size, (height, width))
