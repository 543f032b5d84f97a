"""Semantic inference by marginalizing over query-mask pairs (MaskFormer Sec. 3.4)."""
from __future__ import annotations

from typing import Optional

import torch
from torch.nn import functional as F

__all__ = ["semantic_inference"]

def semantic_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *,
                       mask_prob: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-pixel class scores from mask classification (MaskFormer Sec. 3.4, semantic inference).

    ``score(c, x) = sum_i p_i(c) * sigmoid(m_i(x))``, i.e. marginalizing over the query-mask pairs
    with the no-object probability dropped.

    Args:
        mask_cls: (Q, K+1) class logits of one image.
        mask_pred: (Q, H, W) mask logits.
        mask_prob: ``mask_pred.sigmoid()`` when the caller has it already (it is shared with the
            panoptic and instance inference of the same image); computed here otherwise.

    Returns:
        (K, H, W) float scores (not normalized across classes).
    """
    mask_cls = F.softmax(mask_cls, dim=-1)[..., :-1]
    if mask_prob is None:
        mask_prob = mask_pred.sigmoid()
    return torch.einsum("qc,qhw->chw", mask_cls, mask_prob)
