"""Bipartite matching between predicted and ground-truth masks (MaskFormer Sec. 3.2).

The matching cost of query i and segment j is
``cost_class * (-p_i(c_j)) + cost_mask * focal(m_i, m_j) + cost_dice * dice(m_i, m_j)``
(MaskFormer Sec. 3.2 and A.1; the focal and dice terms are those of DETR's panoptic head), and
the assignment minimizing the total cost is found with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable

__all__ = ["HungarianMatcher", "batch_dice_loss", "batch_sigmoid_focal_loss"]


def batch_dice_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise dice loss. inputs: (N, P) mask logits; targets: (M, P) in {0, 1}. Returns (N, M)."""
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * torch.einsum("nc,mc->nm", inputs, targets)
    denominator = inputs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                             gamma: float = 2) -> torch.Tensor:
    """Pairwise sigmoid focal loss (Lin et al. 2017), averaged over the P pixels.

    inputs: (N, P) mask logits; targets: (M, P) in {0, 1}. Returns (N, M).
    """
    hw = inputs.shape[1]
    prob = inputs.sigmoid()
    focal_pos = ((1 - prob) ** gamma) * F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    focal_neg = (prob ** gamma) * F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    if alpha >= 0:
        focal_pos = focal_pos * alpha
        focal_neg = focal_neg * (1 - alpha)
    loss = torch.einsum("nc,mc->nm", focal_pos, targets) + torch.einsum("nc,mc->nm", focal_neg, (1 - targets))
    return loss / hw


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to ground-truth segments, per image.

    Args:
        cost_class: weight of the classification cost (-probability of the target class).
        cost_mask: weight of the focal-loss mask cost. cost_dice: weight of the dice cost.

    ``forward(outputs, targets)``: outputs has ``pred_logits`` (B, N, K+1) and ``pred_masks``
    (B, N, h, w); targets is a list of B dicts with ``labels`` (M_b,) int64 and ``masks``
    (M_b, H, W) (bool or float). Ground-truth masks are resized to (h, w) with nearest
    interpolation before computing the costs. Returns a list of B pairs
    ``(index_i, index_j)`` of int64 tensors of length min(N, M_b): query index_i[k] is matched to
    target index_j[k].

    Raises:
        ValueError: all costs are zero.
    """

    @configurable
    def __init__(self, *, cost_class: float = 1, cost_mask: float = 1, cost_dice: float = 1):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("HungarianMatcher: all costs can't be 0")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice

    @classmethod
    def from_config(cls, cfg) -> dict:
        """The costs are the loss weights: ``MODEL.MASK_FORMER.{CLASS,MASK,DICE}_WEIGHT``."""
        mf = cfg.MODEL.MASK_FORMER
        return {"cost_class": mf.CLASS_WEIGHT, "cost_mask": mf.MASK_WEIGHT, "cost_dice": mf.DICE_WEIGHT}

    @torch.no_grad()
    def cost_matrix(self, pred_logits: torch.Tensor, pred_masks: torch.Tensor, tgt_ids: torch.Tensor,
                    tgt_masks: torch.Tensor) -> torch.Tensor:
        """The (N, M) matching cost of one image. pred_logits (N, K+1); pred_masks (N, h, w);
        tgt_ids (M,); tgt_masks (M, H, W)."""
        out_prob = pred_logits.softmax(-1)
        cost_class = -out_prob[:, tgt_ids]
        tgt_mask = tgt_masks.to(pred_masks)
        tgt_mask = F.interpolate(tgt_mask[:, None], size=pred_masks.shape[-2:], mode="nearest")
        out_mask = pred_masks.flatten(1)
        tgt_mask = tgt_mask[:, 0].flatten(1)
        cost_mask = batch_sigmoid_focal_loss(out_mask, tgt_mask)
        cost_dice = batch_dice_loss(out_mask, tgt_mask)
        return self.cost_mask * cost_mask + self.cost_class * cost_class + self.cost_dice * cost_dice

    @torch.no_grad()
    def forward(self, outputs: Dict[str, torch.Tensor],
                targets: List[Dict[str, torch.Tensor]]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        bs, num_queries = outputs["pred_logits"].shape[:2]
        indices = []
        for b in range(bs):
            tgt_ids = targets[b]["labels"]
            if len(tgt_ids) == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            c = self.cost_matrix(outputs["pred_logits"][b], outputs["pred_masks"][b], tgt_ids, targets[b]["masks"])
            i, j = linear_sum_assignment(c.reshape(num_queries, -1).cpu())
            indices.append((torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)))
        return indices

    def __repr__(self) -> str:
        return (f"HungarianMatcher(cost_class={self.cost_class}, cost_mask={self.cost_mask}, "
                f"cost_dice={self.cost_dice})")
