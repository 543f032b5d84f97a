"""Panoptic inference from query-mask pairs (MaskFormer Sec. 3.4, "general inference").

Vectorized: the per-query decisions (won area, mask area, kept or not, segment id) come from a
few passes over the kept queries' probabilities (one weighted argmax, one count of confident
pixels, one histogram of the winners), and the map is written in one gather through a per-query
lookup table, where the original loops over the queries with several full-resolution passes each.
The result equals :func:`mask_former.inference.reference.panoptic_inference_reference`'s.
"""
from __future__ import annotations

from typing import Collection, Dict, List, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

__all__ = ["panoptic_inference", "panoptic_segments", "weighted_mask_argmax"]

#: elements of one (queries x rows x width) block of the weighted argmax (bounds its temporary memory)
_ARGMAX_BLOCK_ELEMENTS = 1 << 22


def weighted_mask_argmax(scores: torch.Tensor, mask_prob: torch.Tensor) -> torch.Tensor:
    """``(scores[:, None, None] * mask_prob).argmax(0)``, computed in blocks of rows.

    The products and the argmax (first index at ties) are the same as over the whole tensor; the
    blocks only bound the temporary memory to about ``_ARGMAX_BLOCK_ELEMENTS`` floats.

    Args:
        scores: (Q,) float, Q >= 1. mask_prob: (Q, H, W) float.

    Returns:
        int64 (H, W): the index of the winning query at each pixel.
    """
    q, h, w = mask_prob.shape
    weights = scores.view(-1, 1, 1)
    rows = max(1, _ARGMAX_BLOCK_ELEMENTS // max(1, q * w))
    if rows >= h:
        return (weights * mask_prob).argmax(0)
    out = torch.empty((h, w), dtype=torch.int64, device=mask_prob.device)
    for r0 in range(0, h, rows):
        out[r0:r0 + rows] = (weights * mask_prob[:, r0:r0 + rows]).argmax(0)
    return out


def panoptic_segments(classes: Sequence[int], won_area: Sequence[int], original_area: Sequence[int],
                      assigned_area: Sequence[int], *, thing_classes: Collection[int],
                      overlap_threshold: float) -> Tuple[List[int], List[Dict]]:
    """The segment of each kept query, in query order (steps 3 and 4 of :func:`panoptic_inference`).

    Args:
        classes: the kept queries' classes. won_area: pixels each query won (the weighted argmax).
        original_area: pixels where each query's mask is confident (probability >= 0.5).
        assigned_area: pixels that join each query's segment (the won pixels, or with
            ``mask_must_be_confident`` the won pixels where its mask is confident).
        thing_classes: contiguous ids of the thing classes. overlap_threshold: minimum
            ``won_area / original_area``.

    Returns:
        ``segment_of_query``: the segment id of each query's pixels (0: dropped; stuff queries of
        a class already seen get that segment's id), and ``segments_info`` in id order.
    """
    things = set(int(c) for c in thing_classes)
    segment_of_query = [0] * len(classes)
    segments_info: List[Dict] = []
    stuff_segment_ids: Dict[int, int] = {}
    current_segment_id = 0
    for k, (pred_class, mask_area, mask_original, mask_assigned) in enumerate(zip(
            classes, won_area, original_area, assigned_area)):
        pred_class = int(pred_class)
        isthing = pred_class in things
        if mask_area == 0 or mask_original == 0 or mask_assigned == 0:
            continue
        if mask_area / mask_original < overlap_threshold:
            continue
        if not isthing and pred_class in stuff_segment_ids:
            segment_of_query[k] = stuff_segment_ids[pred_class]
            continue
        current_segment_id += 1
        if not isthing:
            stuff_segment_ids[pred_class] = current_segment_id
        segment_of_query[k] = current_segment_id
        segments_info.append({"id": current_segment_id, "isthing": bool(isthing), "category_id": pred_class})
    return segment_of_query, segments_info


def panoptic_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, thing_classes: Collection[int],
                       object_mask_threshold: float, overlap_threshold: float,
                       mask_must_be_confident: bool = False,
                       mask_prob: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[Dict]]:
    """Assign every pixel to at most one query-mask pair (MaskFormer Sec. 3.4, general inference).

    1. Keep the queries whose most likely class is not "no object" and whose probability exceeds
       ``object_mask_threshold``.
    2. Each pixel goes to ``argmax_i p_i * sigmoid(m_i(x))`` over the kept queries.
    3. A query keeps its segment only if the pixels it won cover at least ``overlap_threshold`` of
       its own mask (``sigmoid(m_i) >= 0.5``); otherwise the segment is dropped (pixels become 0).
       With ``mask_must_be_confident`` the segment is the won pixels where its mask is also
       confident (the area ratio still counts all won pixels, as Mask2Former).
    4. Segments of the same stuff class are merged into one segment.

    Args:
        mask_cls: (Q, K+1) class logits of one image (the last class is "no object").
        mask_pred: (Q, H, W) mask logits at the output resolution.
        thing_classes: contiguous ids of the "thing" classes (others are stuff).
        object_mask_threshold: minimum class probability of a kept query.
        overlap_threshold: minimum (won area / mask area) of a kept segment.
        mask_must_be_confident: also require ``sigmoid(m_i(x)) >= 0.5`` for a pixel to join a
            segment (Mask2Former's variant; MaskFormer's original leaves it out).
        mask_prob: ``mask_pred.sigmoid()`` when the caller has it (shared with the other outputs);
            otherwise only the kept queries' probabilities are computed.

    Returns:
        ``panoptic_seg``: int32 (H, W) segment ids, 0 = no segment; ``segments_info``: a list of
        ``{"id", "isthing", "category_id"}`` in id order (ids 1, 2, ...), as Detectron2.
    """
    num_classes = mask_cls.shape[-1] - 1
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    h, w = mask_pred.shape[-2:]
    device = mask_pred.device
    panoptic_seg = torch.zeros((h, w), dtype=torch.int32, device=device)
    segments_info: List[Dict] = []
    kept = keep.nonzero().flatten()
    num_kept = int(kept.numel())
    if num_kept == 0:
        return panoptic_seg, segments_info

    cur_scores, cur_classes = scores[kept], labels[kept]
    cur_prob = mask_prob[kept] if mask_prob is not None else mask_pred[kept].sigmoid()
    winner = weighted_mask_argmax(cur_scores, cur_prob)  # (H, W) index into the kept queries
    won_area = torch.bincount(winner.flatten(), minlength=num_kept)
    original_area = (cur_prob >= 0.5).flatten(1).sum(1)
    if mask_must_be_confident:
        # the winner's own mask must be confident at the pixel
        assigned = cur_prob.gather(0, winner.unsqueeze(0)).squeeze(0) >= 0.5
        assigned_area = torch.bincount(winner[assigned], minlength=num_kept)
    else:
        assigned = None
        assigned_area = won_area

    segment_of_query, segments_info = panoptic_segments(cur_classes.tolist(), won_area.tolist(),
                                                        original_area.tolist(), assigned_area.tolist(),
                                                        thing_classes=thing_classes,
                                                        overlap_threshold=overlap_threshold)
    if not segments_info:
        return panoptic_seg, segments_info
    lookup = torch.tensor(segment_of_query, dtype=torch.int32, device=device)
    panoptic_seg = lookup[winner]
    if assigned is not None:
        panoptic_seg.masked_fill_(~assigned, 0)
    return panoptic_seg, segments_info
