"""The instance output format shared by the model families (Detectron2's ``Instances``)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from segcore.structures import BitMasks, Boxes, Instances

__all__ = ["instances_from_masks"]


def instances_from_masks(image_size: Tuple[int, int], masks: torch.Tensor, scores: torch.Tensor,
                         classes: torch.Tensor, *, boxes: Optional[torch.Tensor] = None) -> Instances:
    """Pack N predicted masks into Detectron2's instance output.

    Args:
        image_size: (H, W) of the output, in pixels.
        masks: (N, H, W) bool, or float probabilities / 0-1 masks (thresholded at 0.5).
        scores: (N,) float confidence of each instance.
        classes: (N,) int64 contiguous class ids.
        boxes: (N, 4) float32 XYXY tight boxes of the masks, when the caller has them (they are
            not checked); computed from the masks otherwise.

    Returns:
        ``Instances`` with ``pred_masks`` (N, H, W) bool, ``pred_boxes`` (``Boxes``, XYXY pixels,
        the tight box of each mask; all-zero for an empty mask), ``scores`` and ``pred_classes``.

    Raises:
        ValueError: lengths or mask size disagree.
    """
    n = masks.shape[0]
    if scores.shape[0] != n or classes.shape[0] != n:
        raise ValueError(f"instances_from_masks: {n} masks but {scores.shape[0]} scores and {classes.shape[0]} classes")
    if tuple(masks.shape[-2:]) != tuple(image_size):
        raise ValueError(f"instances_from_masks: masks are {tuple(masks.shape[-2:])}, image is {tuple(image_size)}")
    binary = masks if masks.dtype == torch.bool else masks >= 0.5
    result = Instances(tuple(image_size))
    result.pred_masks = binary
    result.pred_boxes = BitMasks(binary).get_bounding_boxes() if boxes is None else Boxes(boxes)
    result.scores = scores
    result.pred_classes = classes.to(torch.int64)
    return result
