"""Panoptic inference from query-mask pairs (MaskFormer Sec. 3.4, "general inference")."""
from __future__ import annotations

from typing import Collection, Dict, List, Tuple

import torch
from torch.nn import functional as F

__all__ = ["panoptic_inference"]


def panoptic_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, thing_classes: Collection[int],
                       object_mask_threshold: float, overlap_threshold: float,
                       mask_must_be_confident: bool = False) -> Tuple[torch.Tensor, List[Dict]]:
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

    Returns:
        ``panoptic_seg``: int32 (H, W) segment ids, 0 = no segment; ``segments_info``: a list of
        ``{"id", "isthing", "category_id"}`` in id order (ids 1, 2, ...), as Detectron2.
    """
    num_classes = mask_cls.shape[-1] - 1
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    mask_prob = mask_pred.sigmoid()
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], mask_prob[keep]
    h, w = mask_pred.shape[-2:]
    panoptic_seg = torch.zeros((h, w), dtype=torch.int32, device=mask_pred.device)
    segments_info: List[Dict] = []
    if cur_masks.shape[0] == 0:
        return panoptic_seg, segments_info

    cur_mask_ids = (cur_scores.view(-1, 1, 1) * cur_masks).argmax(0)
    thing_classes = set(int(c) for c in thing_classes)
    stuff_segment_ids: Dict[int, int] = {}
    current_segment_id = 0
    for k in range(cur_classes.shape[0]):
        pred_class = int(cur_classes[k].item())
        isthing = pred_class in thing_classes
        won = cur_mask_ids == k
        confident = cur_masks[k] >= 0.5
        mask = won & confident if mask_must_be_confident else won
        mask_area = int(won.sum().item())
        original_area = int(confident.sum().item())
        if mask_area == 0 or original_area == 0 or not bool(mask.any()):
            continue
        if mask_area / original_area < overlap_threshold:
            continue
        if not isthing and pred_class in stuff_segment_ids:
            panoptic_seg[mask] = stuff_segment_ids[pred_class]
            continue
        current_segment_id += 1
        if not isthing:
            stuff_segment_ids[pred_class] = current_segment_id
        panoptic_seg[mask] = current_segment_id
        segments_info.append({"id": current_segment_id, "isthing": bool(isthing), "category_id": pred_class})
    return panoptic_seg, segments_info
