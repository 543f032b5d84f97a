"""Video instance inference: the top (query, class) pairs of a clip with their mask tubes
(the original ``VideoMaskFormer.inference_video``, ``mask2former_video/video_maskformer_model.py``).

Rules, as the original:

1. scores: the softmax over the K + 1 classes of each of the N queries, without the no-object
   column: N x K (query, class) pairs;
2. the ``topk`` (10) pairs over the whole video by that probability alone (unlike Mask2Former's
   image instance inference, no mask-quality factor is multiplied in), a query may appear with
   several classes;
3. each selected query's mask tube, frame by frame: bilinear to the padded input size, cropped to
   the image, bilinear to the video's output size, thresholded at 0 (logit > 0).

The result is the original's dict ``{"image_size", "pred_scores", "pred_labels", "pred_masks"}``
(``pred_masks``: a list of bool (T, H, W) tubes); :func:`frame_instances` turns it into one
:class:`~segcore.structures.Instances` per frame.

The resize of step 3 is :func:`mask_former.inference.blocks.mask_logit_blocks` (the image
inference's, tested against the original order of work), one frame at a time for the selected
queries only: the original upsamples every query's tube to the padded size at once (N x T x Hp x Wp
floats); here at most ``topk`` x Hp x Wp floats exist at a time, and the output (``topk`` x T x H x W
bools) is the only per-video allocation. The values are the same.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch.nn import functional as F

from mask_former.inference.blocks import mask_logit_blocks
from segcore.structures import Boxes, Instances, boxes_from_occupancy

__all__ = ["VIDEO_TOPK", "VideoInstancePostProcessor", "frame_instances", "select_top_pairs", "tube_masks"]

#: (query, class) pairs kept per video (the original's constant in ``inference_video``)
VIDEO_TOPK = 10


def select_top_pairs(mask_cls: torch.Tensor, topk: int = VIDEO_TOPK) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``topk`` most probable (query, class) pairs of a video.

    Args:
        mask_cls: float (N, K + 1) class logits of the N queries (the last column is "no object").
        topk: pairs to keep (fewer when N x K is smaller).

    Returns:
        ``(scores, labels, queries)``: float (k,) class probabilities, int64 (k,) contiguous class
        ids in [0, K) and int64 (k,) query indices, k = min(topk, N * K), by decreasing score
        (the original's ``topk(sorted=False)`` returns the same set).
    """
    num_classes = mask_cls.shape[-1] - 1
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    k = min(int(topk), scores.numel())
    top_scores, flat = scores.flatten().topk(k, sorted=True)
    return top_scores, flat % num_classes, torch.div(flat, num_classes, rounding_mode="floor")


def tube_masks(mask_logits: torch.Tensor, padded_size: Sequence[int], image_size: Sequence[int],
               output_size: Sequence[int]) -> torch.Tensor:
    """Thresholded full-resolution mask tubes.

    Args:
        mask_logits: float (k, T, h, w) mask logits at the mask features' resolution (1/4).
        padded_size: (Hp, Wp) of the padded input frames. image_size: (H, W) of the frames inside
            the padding. output_size: (H_out, W_out) to return (the video's size).

    Returns:
        bool (k, T, H_out, W_out) on the CPU: bilinear to ``padded_size``, cropped to ``image_size``,
        bilinear to ``output_size`` (``align_corners=False``), then logit > 0, frame by frame.
    """
    k, t = mask_logits.shape[:2]
    out_h, out_w = int(output_size[0]), int(output_size[1])
    masks = torch.zeros((k, t, out_h, out_w), dtype=torch.bool)
    if k == 0:
        return masks
    for frame in range(t):
        for block in mask_logit_blocks(mask_logits[:, frame], padded_size, image_size, (out_h, out_w)):
            masks[:, frame, block.r0:block.r1] = (block.logits > 0).cpu()
    return masks


class VideoInstancePostProcessor:
    """One video's (class, mask tube) predictions -> the original's video output.

    Args:
        topk: (query, class) pairs kept (:data:`VIDEO_TOPK`, the original's 10).

    ``__call__(mask_cls, mask_pred, padded_size, image_size, output_size)``: mask_cls float
    (N, K + 1); mask_pred float (N, T, h, w); padded_size (Hp, Wp); image_size (H, W) of the
    frames inside the padding; output_size (height, width) of the video. Returns
    ``{"image_size": (height, width), "pred_scores": [float] * k, "pred_labels": [int] * k,
    "pred_masks": [bool (T, height, width)] * k}`` (CPU tensors), k = min(topk, N * K); all empty
    when N = 0 (as the original).

    Raises:
        ValueError: ``topk`` < 1; shapes that do not match (from ``__call__``).
    """

    #: the masks are resized to the output size before they are thresholded (read by
    #: :class:`mask_former.MaskFormer` as the original's ``sem_seg_postprocess_before_inference``)
    masks_at_output_size = True

    def __init__(self, *, topk: int = VIDEO_TOPK):
        if topk < 1:
            raise ValueError(f"VideoInstancePostProcessor: topk must be >= 1, got {topk}")
        self.topk = int(topk)

    def __call__(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor, padded_size: Sequence[int],
                 image_size: Sequence[int], output_size: Sequence[int]) -> dict:
        if mask_pred.dim() != 4 or mask_cls.dim() != 2 or mask_cls.shape[0] != mask_pred.shape[0]:
            raise ValueError(f"VideoInstancePostProcessor: expected class logits (N, K+1) and mask tubes (N, T, h, w), "
                             f"got {tuple(mask_cls.shape)} and {tuple(mask_pred.shape)}")
        height, width = int(output_size[0]), int(output_size[1])
        if mask_cls.shape[0] == 0:
            return {"image_size": (height, width), "pred_scores": [], "pred_labels": [], "pred_masks": []}
        scores, labels, queries = select_top_pairs(mask_cls, self.topk)
        masks = tube_masks(mask_pred[queries], padded_size, image_size, (height, width))
        return {
            "image_size": (height, width),
            "pred_scores": scores.tolist(),
            "pred_labels": labels.tolist(),
            "pred_masks": list(masks),
        }

    def __repr__(self) -> str:
        return f"VideoInstancePostProcessor(topk={self.topk})"


def frame_instances(video_output: dict) -> List[Instances]:
    """The video output as one :class:`~segcore.structures.Instances` per frame.

    Args:
        video_output: :class:`VideoInstancePostProcessor`'s (or ``VideoMaskFormer``'s) result.

    Returns:
        T Instances of size ``image_size``, each with the k predictions in the output's order:
        ``pred_masks`` bool (k, H, W) (the tube's frame), ``scores`` float32 (k,), ``pred_classes``
        int64 (k,) and ``pred_boxes`` (the frame mask's tight XYXY box, (0, 0, 0, 0) when empty).
        Empty list when the output has no prediction and no frame count is known.
    """
    masks = video_output["pred_masks"]
    if not masks:
        return []
    tubes = torch.stack([torch.as_tensor(m, dtype=torch.bool) for m in masks])  # (k, T, H, W)
    scores = torch.as_tensor(video_output["pred_scores"], dtype=torch.float32)
    classes = torch.as_tensor(video_output["pred_labels"], dtype=torch.int64)
    out = []
    for frame in range(tubes.shape[1]):
        m = tubes[:, frame]
        inst = Instances(tuple(video_output["image_size"]))
        inst.pred_masks = m
        inst.scores = scores.clone()
        inst.pred_classes = classes.clone()
        inst.pred_boxes = Boxes(boxes_from_occupancy(m.any(dim=1), m.any(dim=2)))
        out.append(inst)
    return out
