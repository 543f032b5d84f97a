"""Instance inference from query-mask pairs (Mask2Former Sec. 4, instance segmentation)."""
from __future__ import annotations

from typing import Collection, Optional

import torch
from torch.nn import functional as F

from segcore.structures import Instances

from .instances import instances_from_masks

__all__ = ["instance_inference"]


def instance_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, topk: int,
                       thing_classes: Optional[Collection[int]] = None) -> Instances:
    """Up to ``topk`` scored instances of one image from its N query-mask pairs.

    As Mask2Former: every (query, class) pair is a candidate with the class probability as its
    score (the no-object class excluded); the ``topk`` best are kept (sorted by that score, best
    first); on panoptic datasets only thing classes are kept. A kept instance's mask is its
    query's ``mask logit > 0`` and its final score is the class probability times the mean mask
    probability inside that mask (the original's "mask score"). Boxes are the masks' tight boxes
    (the original returns zero boxes).

    Args:
        mask_cls: (N, K+1) class logits of one image (the last class is "no object").
        mask_pred: (N, H, W) mask logits at the output resolution (pixels).
        topk: the number of (query, class) candidates kept (``TEST.DETECTIONS_PER_IMAGE``); at
            most N * K are available.
        thing_classes: contiguous ids of the thing classes; when given, instances of other classes
            are dropped after the top-k selection (panoptic datasets).

    Returns:
        :class:`Instances` of size (H, W) with ``pred_masks`` (M, H, W) bool, ``pred_boxes``
        (XYXY pixels), ``scores`` (M,) float and ``pred_classes`` (M,) int64, M <= ``topk``.

    Raises:
        ValueError: ``topk`` < 1, or ``mask_cls`` and ``mask_pred`` disagree on N.
    """
    if topk < 1:
        raise ValueError(f"instance_inference: topk (TEST.DETECTIONS_PER_IMAGE) must be >= 1, got {topk}")
    num_queries, num_classes = mask_cls.shape[0], mask_cls.shape[-1] - 1
    if mask_pred.shape[0] != num_queries:
        raise ValueError(f"instance_inference: {num_queries} class predictions but {mask_pred.shape[0]} masks")
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    scores_per_image, topk_indices = scores.flatten().topk(min(topk, scores.numel()), sorted=True)
    labels_per_image = topk_indices % num_classes
    mask_pred = mask_pred[topk_indices // num_classes]
    if thing_classes is not None:
        things = torch.as_tensor(sorted(int(c) for c in thing_classes), dtype=torch.int64, device=mask_cls.device)
        keep = torch.isin(labels_per_image, things)
        scores_per_image, labels_per_image, mask_pred = scores_per_image[keep], labels_per_image[keep], mask_pred[keep]
    pred_masks = mask_pred > 0
    binary = pred_masks.flatten(1).to(mask_pred.dtype)
    mask_scores = (mask_pred.sigmoid().flatten(1) * binary).sum(1) / (binary.sum(1) + 1e-6)
    return instances_from_masks(tuple(mask_pred.shape[-2:]), pred_masks, scores_per_image * mask_scores,
                                labels_per_image)
