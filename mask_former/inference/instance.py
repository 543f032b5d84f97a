"""Instance inference from query-mask pairs (Mask2Former Sec. 4, instance segmentation).

The top-k (query, class) pairs often share queries; the full-resolution work (thresholding, the
mask score, the box) is done once per distinct query, in blocks of queries, and the per-pair
outputs are gathered from it. The result equals
:func:`mask_former.inference.reference.instance_inference_reference`'s.
"""
from __future__ import annotations

from typing import Collection, Optional, Tuple

import torch
from torch.nn import functional as F

from segcore.structures import BitMasks, Instances

from .instances import instances_from_masks

__all__ = ["instance_inference", "mask_scores_and_boxes", "topk_candidates"]

#: queries thresholded together (bounds the temporary memory to this many full-resolution masks)
_QUERY_BLOCK = 16


def topk_candidates(mask_cls: torch.Tensor, topk: int, thing_classes: Optional[Collection[int]] = None, *,
                    num_masks: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``topk`` best (query, class) pairs of one image, by class probability (Mask2Former's
    instance inference; the no-object class excluded), best first, then (with ``thing_classes``)
    only those of thing classes.

    Args:
        mask_cls: (N, K+1) class logits. topk: pairs kept before the thing filter (at most N * K).
        thing_classes: contiguous ids of the thing classes, or None to keep every class.

        num_masks: the number of masks the queries index (checked against N when given).

    Returns:
        ``scores`` (M,) float class probabilities, ``labels`` (M,) int64 classes and ``queries``
        (M,) int64 query indices, M <= ``topk``.

    Raises:
        ValueError: ``topk`` < 1, or ``num_masks`` differs from N.
    """
    if topk < 1:
        raise ValueError(f"instance_inference: topk (TEST.DETECTIONS_PER_IMAGE) must be >= 1, got {topk}")
    if num_masks is not None and num_masks != mask_cls.shape[0]:
        raise ValueError(f"instance_inference: {mask_cls.shape[0]} class predictions but {num_masks} masks")
    num_classes = mask_cls.shape[-1] - 1
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    top_scores, top_indices = scores.flatten().topk(min(topk, scores.numel()), sorted=True)
    labels, queries = top_indices % num_classes, top_indices // num_classes
    if thing_classes is not None:
        things = torch.as_tensor(sorted(int(c) for c in thing_classes), dtype=torch.int64, device=mask_cls.device)
        keep = torch.isin(labels, things)
        top_scores, labels, queries = top_scores[keep], labels[keep], queries[keep]
    return top_scores, labels, queries


def mask_scores_and_boxes(mask_pred: torch.Tensor, queries: torch.Tensor,
                          mask_prob: Optional[torch.Tensor] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The binary mask, mask score and tight box of some queries.

    Args:
        mask_pred: (N, H, W) mask logits.
        queries: (U,) int64 indices into N.
        mask_prob: ``mask_pred.sigmoid()`` if the caller has it; computed per block otherwise.

    Returns:
        ``masks`` (U, H, W) bool (``logit > 0``); ``scores`` (U,) float, the mean probability
        inside the mask (``sum(sigmoid(m) * mask) / (area + 1e-6)``, Mask2Former's mask score;
        0 for an empty mask); ``boxes`` (U, 4) float32 XYXY pixels (see
        :meth:`segcore.structures.BitMasks.get_bounding_boxes`).
    """
    u = int(queries.numel())
    h, w = mask_pred.shape[-2:]
    masks = torch.empty((u, h, w), dtype=torch.bool, device=mask_pred.device)
    scores = torch.empty((u,), dtype=mask_pred.dtype, device=mask_pred.device)
    for start in range(0, u, _QUERY_BLOCK):
        block = queries[start:start + _QUERY_BLOCK]
        logits = mask_pred[block]
        binary = logits > 0
        prob = mask_prob[block] if mask_prob is not None else logits.sigmoid()
        weights = binary.flatten(1).to(mask_pred.dtype)
        scores[start:start + _QUERY_BLOCK] = (prob.flatten(1) * weights).sum(1) / (weights.sum(1) + 1e-6)
        masks[start:start + _QUERY_BLOCK] = binary
    boxes = BitMasks(masks).get_bounding_boxes().tensor
    return masks, scores, boxes


def instance_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, topk: int,
                       thing_classes: Optional[Collection[int]] = None,
                       mask_prob: Optional[torch.Tensor] = None) -> Instances:
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
        mask_prob: ``mask_pred.sigmoid()`` when the caller has it (shared with the other outputs).

    Returns:
        :class:`Instances` of size (H, W) with ``pred_masks`` (M, H, W) bool, ``pred_boxes``
        (XYXY pixels), ``scores`` (M,) float and ``pred_classes`` (M,) int64, M <= ``topk``.

    Raises:
        ValueError: ``topk`` < 1, or ``mask_cls`` and ``mask_pred`` disagree on N.
    """
    scores_per_image, labels_per_image, query_per_image = topk_candidates(mask_cls, topk, thing_classes,
                                                                          num_masks=mask_pred.shape[0])
    queries, inverse = torch.unique(query_per_image, return_inverse=True)
    masks, mask_scores, boxes = mask_scores_and_boxes(mask_pred, queries, mask_prob)
    return instances_from_masks(tuple(mask_pred.shape[-2:]), masks[inverse], scores_per_image * mask_scores[inverse],
                                labels_per_image, boxes=boxes[inverse])
