"""Instance inference from query-mask pairs (Mask2Former Sec. 4, instance segmentation).

The top-k (query, class) pairs often share queries; the full-resolution work (thresholding, the
mask score, the box) is done once per distinct query, block by block (:class:`InstanceMasks`),
and the per-pair outputs are gathered from it. The result equals the original's
(``tests/mask_former/inference/reference.py``).
"""
from __future__ import annotations

from typing import Collection, Optional, Tuple

import torch
from torch.nn import functional as F

from segcore.structures import Boxes, Instances, boxes_from_occupancy

from .blocks import MaskBlock, MaskOutput, row_blocks, run_outputs

__all__ = ["InstanceMasks", "instance_inference", "topk_candidates"]


def topk_candidates(mask_cls: torch.Tensor, topk: int,
                    thing_classes: Optional[Collection[int]] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``topk`` best (query, class) pairs of one image, by class probability (Mask2Former's
    instance inference; the no-object class excluded), best first, then (with ``thing_classes``)
    only those of thing classes.

    Args:
        mask_cls: (N, K+1) class logits. topk: pairs kept before the thing filter (at most N * K).
        thing_classes: contiguous ids of the thing classes, or None to keep every class.

    Returns:
        ``scores`` (M,) float class probabilities, ``labels`` (M,) int64 classes and ``queries``
        (M,) int64 query indices, M <= ``topk``.

    Raises:
        ValueError: ``topk`` < 1.
    """
    if topk < 1:
        raise ValueError(f"instance_inference: topk (TEST.DETECTIONS_PER_IMAGE) must be >= 1, got {topk}")
    num_classes = mask_cls.shape[-1] - 1
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    top_scores, top_indices = scores.flatten().topk(min(topk, scores.numel()), sorted=True)
    labels, queries = top_indices % num_classes, top_indices // num_classes
    if thing_classes is not None:
        things = torch.as_tensor(sorted(int(c) for c in thing_classes), dtype=torch.int64, device=mask_cls.device)
        keep = torch.isin(labels, things)
        top_scores, labels, queries = top_scores[keep], labels[keep], queries[keep]
    return top_scores, labels, queries


class InstanceMasks(MaskOutput):
    """The instance output, block by block: up to ``topk`` scored instances of one image.

    As Mask2Former: every (query, class) pair is a candidate with the class probability as its
    score (the no-object class excluded); the ``topk`` best are kept (sorted by that score, best
    first; :func:`topk_candidates`); on panoptic datasets only thing classes are kept. A kept
    instance's mask is its query's ``mask logit > 0`` and its final score is the class probability
    times the mean mask probability inside that mask (``sum(sigmoid(m) * mask) / (area + 1e-6)``,
    the original's "mask score"; sums taken per block in the logits' dtype, accumulated in float64).
    Boxes are the masks' tight boxes (the original returns zero boxes).

    Args:
        mask_cls: (N, K+1) class logits of one image (the last class is "no object").
        size: (H, W) of the output, pixels.
        topk: the number of (query, class) candidates kept (``TEST.DETECTIONS_PER_IMAGE``).
        thing_classes: contiguous ids of the thing classes; when given, instances of other classes
            are dropped after the top-k selection (panoptic datasets).

    :meth:`result`: :class:`Instances` of size (H, W) with ``pred_masks`` (M, H, W) bool,
    ``pred_boxes`` (XYXY pixels), ``scores`` (M,) float and ``pred_classes`` (M,) int64, M <= ``topk``.

    Raises:
        ValueError: ``topk`` < 1.
    """

    def __init__(self, mask_cls: torch.Tensor, size: Tuple[int, int], *, topk: int,
                 thing_classes: Optional[Collection[int]] = None):
        self.scores, self.labels, pair_queries = topk_candidates(mask_cls, topk, thing_classes)
        # the distinct queries, and which of them each (query, class) pair reads
        self.queries, self.inverse = torch.unique(pair_queries, return_inverse=True)
        height, width = int(size[0]), int(size[1])
        device, num = mask_cls.device, int(self.queries.numel())
        self.size = (height, width)
        self.masks = torch.empty((num, height, width), dtype=torch.bool, device=device)
        self.prob_sums = torch.zeros(num, dtype=torch.float64, device=device)
        self.areas = torch.zeros(num, dtype=torch.int64, device=device)
        self.rows_any = torch.empty((num, height), dtype=torch.bool, device=device)
        self.cols_any = torch.zeros((num, width), dtype=torch.bool, device=device)

    def add(self, block: MaskBlock) -> None:
        if not self.queries.numel():
            return
        logits = block.logits.index_select(0, self.queries)  # (U, rows, W)
        binary = logits > 0
        self.masks[:, block.r0:block.r1] = binary
        self.prob_sums += (block.prob_of(self.queries) * binary).flatten(1).sum(1)
        self.areas += binary.flatten(1).sum(1)
        # "a pixel of the row / column is in the mask": the largest logit is > 0 (a float
        # reduction, much faster than any() over bools)
        self.rows_any[:, block.r0:block.r1] = logits.amax(dim=2) > 0
        self.cols_any |= logits.amax(dim=1) > 0

    def result(self) -> Instances:
        dtype = self.scores.dtype
        mask_scores = (self.prob_sums / (self.areas.to(torch.float64) + 1e-6)).to(dtype)
        instances = Instances(self.size)
        instances.pred_masks = self.masks.index_select(0, self.inverse)
        instances.pred_boxes = Boxes(boxes_from_occupancy(self.cols_any, self.rows_any)[self.inverse])
        instances.scores = self.scores * mask_scores[self.inverse]
        instances.pred_classes = self.labels.to(torch.int64)
        return instances


def instance_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, topk: int,
                       thing_classes: Optional[Collection[int]] = None,
                       mask_prob: Optional[torch.Tensor] = None) -> Instances:
    """Up to ``topk`` scored instances of one image from its N query-mask pairs; see
    :class:`InstanceMasks`.

    Args:
        mask_cls: (N, K+1) class logits of one image (the last class is "no object").
        mask_pred: (N, H, W) mask logits at the output resolution (pixels).
        topk, thing_classes: see :class:`InstanceMasks`.
        mask_prob: ``mask_pred.sigmoid()`` when the caller has it (shared with the other outputs).

    Returns:
        :class:`Instances` (see :class:`InstanceMasks`).

    Raises:
        ValueError: ``topk`` < 1, or ``mask_cls`` and ``mask_pred`` disagree on N.
    """
    if mask_cls.shape[0] != mask_pred.shape[0]:
        raise ValueError(f"instance_inference: {mask_cls.shape[0]} class predictions but {mask_pred.shape[0]} masks")
    output = InstanceMasks(mask_cls, mask_pred.shape[-2:], topk=topk, thing_classes=thing_classes)
    return run_outputs([output], row_blocks(mask_pred, mask_prob))[0]
