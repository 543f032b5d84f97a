"""Panoptic inference from query-mask pairs (MaskFormer Sec. 3.4, "general inference").

Vectorized and block by block (:class:`PanopticSegments`): the per-query decisions (won area, mask
area, kept or not, segment id) come from one pass over the kept queries' probabilities (a weighted
argmax, a count of confident pixels per block, one histogram of the winners), and the map is written
in one gather through a per-query lookup table, where the original loops over the queries with
several full-resolution passes each. The result equals the original loop's
(``tests/mask_former/inference/reference.py``).
"""
from __future__ import annotations

from typing import Collection, Dict, List, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

from .blocks import MaskBlock, MaskOutput, row_blocks, run_outputs

__all__ = ["PanopticSegments", "panoptic_inference", "panoptic_segments"]


def panoptic_segments(classes: Sequence[int], won_area: Sequence[int], original_area: Sequence[int],
                      assigned_area: Sequence[int], *, thing_classes: Collection[int],
                      overlap_threshold: float) -> Tuple[List[int], List[Dict]]:
    """The segment of each kept query, in query order (steps 3 and 4 of :class:`PanopticSegments`).

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


class PanopticSegments(MaskOutput):
    """The panoptic output, block by block: every pixel goes to at most one query-mask pair
    (MaskFormer Sec. 3.4, general inference).

    1. Keep the queries whose most likely class is not "no object" and whose probability exceeds
       ``object_mask_threshold``.
    2. Each pixel goes to ``argmax_i p_i * sigmoid(m_i(x))`` over the kept queries (the first at ties).
    3. A query keeps its segment only if the pixels it won cover at least ``overlap_threshold`` of
       its own mask (``sigmoid(m_i) >= 0.5``); otherwise the segment is dropped (pixels become 0).
       With ``mask_must_be_confident`` the segment is the won pixels where its mask is also
       confident (the area ratio still counts all won pixels, as Mask2Former).
    4. Segments of the same stuff class are merged into one segment.

    Args:
        mask_cls: (N, K+1) class logits of one image (the last class is "no object").
        size: (H, W) of the output, pixels.
        thing_classes: contiguous ids of the "thing" classes (others are stuff).
        object_mask_threshold: minimum class probability of a kept query.
        overlap_threshold: minimum (won area / mask area) of a kept segment.
        mask_must_be_confident: also require ``sigmoid(m_i(x)) >= 0.5`` for a pixel to join a
            segment (Mask2Former's variant; MaskFormer's original leaves it out).

    :meth:`result`: ``(panoptic_seg, segments_info)``: int32 (H, W) segment ids, 0 = no segment, and a
    list of ``{"id", "isthing", "category_id"}`` in id order (ids 1, 2, ...), as Detectron2.
    """

    def __init__(self, mask_cls: torch.Tensor, size: Tuple[int, int], *, thing_classes: Collection[int],
                 object_mask_threshold: float, overlap_threshold: float, mask_must_be_confident: bool = False):
        num_classes = mask_cls.shape[-1] - 1
        scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
        self.kept = (labels.ne(num_classes) & (scores > object_mask_threshold)).nonzero().flatten()
        self.kept_scores = scores[self.kept].view(-1, 1, 1)
        self.kept_classes = labels[self.kept]
        self.thing_classes, self.overlap_threshold = thing_classes, overlap_threshold
        height, width = int(size[0]), int(size[1])
        device = mask_cls.device
        self.panoptic_seg = torch.zeros((height, width), dtype=torch.int32, device=device)
        num_kept = int(self.kept.numel())
        self.winner = torch.empty((height, width), dtype=torch.int64, device=device) if num_kept else None
        self.original_area = torch.zeros(num_kept, dtype=torch.int64, device=device)
        self.assigned = (torch.empty((height, width), dtype=torch.bool, device=device)
                         if num_kept and mask_must_be_confident else None)

    def add(self, block: MaskBlock) -> None:
        if self.winner is None:
            return
        kept_prob = block.prob_of(self.kept)  # (U, rows, W)
        block_winner = (self.kept_scores * kept_prob).argmax(0)
        self.winner[block.r0:block.r1] = block_winner
        self.original_area += (kept_prob >= 0.5).flatten(1).sum(1)
        if self.assigned is not None:  # the winner's own mask must be confident at the pixel
            self.assigned[block.r0:block.r1] = kept_prob.gather(0, block_winner.unsqueeze(0)).squeeze(0) >= 0.5

    def result(self) -> Tuple[torch.Tensor, List[Dict]]:
        if self.winner is None:
            return self.panoptic_seg, []
        num_kept = int(self.kept.numel())
        won_area = torch.bincount(self.winner.flatten(), minlength=num_kept)
        assigned_area = won_area if self.assigned is None else torch.bincount(self.winner[self.assigned],
                                                                               minlength=num_kept)
        segment_of_query, segments_info = panoptic_segments(
            self.kept_classes.tolist(), won_area.tolist(), self.original_area.tolist(), assigned_area.tolist(),
            thing_classes=self.thing_classes, overlap_threshold=self.overlap_threshold)
        if not segments_info:
            return self.panoptic_seg, segments_info
        lookup = torch.tensor(segment_of_query, dtype=torch.int32, device=self.winner.device)
        panoptic_seg = lookup[self.winner]
        if self.assigned is not None:
            panoptic_seg.masked_fill_(~self.assigned, 0)
        return panoptic_seg, segments_info


def panoptic_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, thing_classes: Collection[int],
                       object_mask_threshold: float, overlap_threshold: float,
                       mask_must_be_confident: bool = False,
                       mask_prob: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[Dict]]:
    """Assign every pixel to at most one query-mask pair (MaskFormer Sec. 3.4, general inference);
    see :class:`PanopticSegments` for the steps.

    Args:
        mask_cls: (N, K+1) class logits of one image (the last class is "no object").
        mask_pred: (N, H, W) mask logits at the output resolution.
        thing_classes, object_mask_threshold, overlap_threshold, mask_must_be_confident: see
            :class:`PanopticSegments`.
        mask_prob: ``mask_pred.sigmoid()`` when the caller has it; otherwise only the kept
            queries' probabilities are computed.

    Returns:
        ``panoptic_seg``: int32 (H, W) segment ids, 0 = no segment; ``segments_info``: a list of
        ``{"id", "isthing", "category_id"}`` in id order (ids 1, 2, ...), as Detectron2.
    """
    output = PanopticSegments(mask_cls, mask_pred.shape[-2:], thing_classes=thing_classes,
                              object_mask_threshold=object_mask_threshold, overlap_threshold=overlap_threshold,
                              mask_must_be_confident=mask_must_be_confident)
    return run_outputs([output], row_blocks(mask_pred, mask_prob))[0]
