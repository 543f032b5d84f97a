"""Drawing predictions on consecutive video frames with colours that stay stable over time.

As Detectron2's ``detectron2/utils/video_visualizer.py``: classes keep their class colour;
instances (and panoptic thing segments) are matched to those of the previous frames by mask
IoU, and a matched instance keeps its colour, so objects do not flicker between colours.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .colormap import random_color
from .visualizer import _INSTANCE_ALPHA, ColorMode, VisImage, Visualizer, _to_numpy

__all__ = ["VideoVisualizer"]

# An instance of a previous frame is remembered for this many frames without a match.
_TRACK_TTL = 8
# Minimum mask IoU for an instance to take over the colour of a previous one.
_MATCH_IOU = 0.5
# IoU is computed on masks subsampled by this stride (pixels), which is plenty for matching.
_IOU_STRIDE = 4


@dataclass
class _TrackedInstance:
    label: Optional[int]
    mask: np.ndarray  # bool, subsampled by _IOU_STRIDE
    color: np.ndarray  # RGB 0..255
    ttl: int


def _pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU between N and M flattened bool masks ((N, P), (M, P))."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-6), 0.0)


class VideoVisualizer:
    """Visualize predictions frame after frame (Detectron2's ``VideoVisualizer``).

    Args:
        metadata: dataset metadata, as for :class:`~segcore.utils.visualizer.Visualizer`.
        instance_mode: ColorMode.IMAGE (a random colour per tracked instance),
            ColorMode.SEGMENTATION (jittered class colours) or ColorMode.IMAGE_BW.
        seed: seed of the colour generator.
    """

    def __init__(self, metadata=None, instance_mode: ColorMode = ColorMode.IMAGE, *, seed: int = 0):
        self.metadata = metadata
        self._instance_mode = instance_mode
        self._rng = np.random.default_rng(seed)
        self._old_instances: List[_TrackedInstance] = []

    def _visualizer(self, frame: np.ndarray) -> Visualizer:
        return Visualizer(frame, self.metadata, instance_mode=self._instance_mode,
                          seed=int(self._rng.integers(2**31)))

    def _assign_colors(self, labels: Sequence[Optional[int]], masks: np.ndarray,
                       class_colors: Sequence[np.ndarray], vis: Visualizer,
                       use_class_colors: bool) -> List[np.ndarray]:
        """Colours for this frame's instances; updates the memory of previous instances.

        Args:
            labels: class per instance (matching requires equal classes), or None entries.
            masks: (N, H, W) bool masks of this frame.
            class_colors: the class colour per instance.
            use_class_colors: new instances get their class colour jittered (else a random
                palette colour).
        """
        small = np.asarray(masks, dtype=bool)[:, ::_IOU_STRIDE, ::_IOU_STRIDE]
        n = len(small)
        colors: List[Optional[np.ndarray]] = [None] * n
        matched_old = set()
        old = [o for o in self._old_instances if o.mask.shape == small.shape[1:]]
        if n and old:
            iou = _pairwise_iou(small.reshape(n, -1), np.stack([o.mask.reshape(-1) for o in old]))
            for flat in np.argsort(-iou, axis=None):
                i, j = np.unravel_index(flat, iou.shape)
                if iou[i, j] <= _MATCH_IOU:
                    break
                if colors[i] is not None or j in matched_old or old[j].label != labels[i]:
                    continue
                colors[i] = old[j].color
                matched_old.add(j)
        for i in range(n):
            if colors[i] is None:
                if use_class_colors:
                    colors[i] = vis._jitter(class_colors[i])
                else:
                    colors[i] = random_color(rgb=True, rng=self._rng)
        kept = [o for j, o in enumerate(old) if j not in matched_old]
        for o in kept:
            o.ttl -= 1
        self._old_instances = [o for o in kept if o.ttl > 0] + [
            _TrackedInstance(labels[i], small[i], colors[i], _TRACK_TTL) for i in range(n)
        ]
        return colors

    def draw_instance_predictions(self, frame: np.ndarray, predictions) -> VisImage:
        """Draw ``Instances``-like predictions on one frame ((H, W, 3) uint8 RGB).

        Instances without masks are matched by their filled boxes.
        """
        vis = self._visualizer(frame)
        masks, boxes, labels, classes = vis._instance_style(predictions)
        n = len(predictions)
        if masks is None:
            masks = np.zeros((n,) + vis.img.shape[:2], dtype=bool)
            for i, (x0, y0, x1, y1) in enumerate(boxes if boxes is not None else []):
                masks[i, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
            draw_masks = None
        else:
            draw_masks = masks
        cls = [None] * n if classes is None else [int(c) for c in classes]
        class_colors = [vis._thing_name_color(c)[1] if c is not None else np.zeros(3, np.float32) for c in cls]
        colors = self._assign_colors(cls, masks, class_colors, vis,
                                     use_class_colors=self._instance_mode == ColorMode.SEGMENTATION)
        if self._instance_mode == ColorMode.IMAGE_BW:
            vis._grayscale_background(draw_masks.any(axis=0) if draw_masks is not None and n else None)
        alpha = _INSTANCE_ALPHA[self._instance_mode.name]
        return vis.overlay_instances(masks=draw_masks, boxes=boxes, labels=labels, assigned_colors=colors,
                                     alpha=alpha)

    def draw_sem_seg(self, frame: np.ndarray, sem_seg, area_threshold: Optional[float] = None,
                     alpha: float = 0.6) -> VisImage:
        """Draw a semantic map on one frame: colours are per class, so stable by construction.

        See :meth:`Visualizer.draw_sem_seg` for ``sem_seg`` and the undrawn pixels.
        """
        return self._visualizer(frame).draw_sem_seg(sem_seg, area_threshold=area_threshold, alpha=alpha)

    def draw_panoptic_seg(self, frame: np.ndarray, panoptic_seg, segments_info,
                          area_threshold: Optional[float] = None, alpha: float = 0.6) -> VisImage:
        """Draw a panoptic segmentation on one frame; thing segments keep colours across frames.

        See :meth:`Visualizer.draw_panoptic_seg` for the arguments.
        """
        vis = self._visualizer(frame)
        pan = _to_numpy(panoptic_seg)
        vis._check_map_shape(pan, "panoptic_seg")
        segments = vis._panoptic_segments(pan, segments_info)
        things = [s for s in segments if s["isthing"]]
        colors = None
        if things:
            labels = [int(s["category_id"]) for s in things]
            class_colors = [vis._segment_name_color(c, True)[1] for c in labels]
            colors = self._assign_colors(labels, np.stack([s["mask"] for s in things]), class_colors, vis,
                                         use_class_colors=True)
        return vis._draw_panoptic_segments(segments, area_threshold, alpha, thing_colors=colors)

    # Detectron2's earlier name.
    draw_panoptic_seg_predictions = draw_panoptic_seg
