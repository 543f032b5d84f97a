"""Semantic inference by marginalizing over query-mask pairs (MaskFormer Sec. 3.4)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch.nn import functional as F

from .blocks import MaskBlock, MaskOutput, row_blocks, run_outputs

__all__ = ["SemanticScores", "semantic_inference"]


class SemanticScores(MaskOutput):
    """The semantic output, block by block: ``score(c, x) = sum_i p_i(c) * sigmoid(m_i(x))``
    (MaskFormer Sec. 3.4), i.e. marginalizing over the query-mask pairs with the no-object
    probability dropped.

    Args:
        mask_cls: (N, K+1) class logits of one image (the last class is "no object").
        size: (H, W) of the output, pixels.

    :meth:`result`: (K, H, W) float scores (not normalized across classes).
    """

    def __init__(self, mask_cls: torch.Tensor, size: Tuple[int, int]):
        self.class_prob = F.softmax(mask_cls, dim=-1)[:, :-1].t()  # (K, N)
        height, width = int(size[0]), int(size[1])
        self.width = width
        self.scores = torch.empty((self.class_prob.shape[0], height, width), dtype=mask_cls.dtype,
                                  device=mask_cls.device)

    def add(self, block: MaskBlock) -> None:
        rows = self.scores.view(self.scores.shape[0], -1)
        # written in place: the block's columns of the (K, H * W) scores
        torch.mm(self.class_prob, block.prob.reshape(block.prob.shape[0], -1),
                 out=rows[:, block.r0 * self.width:block.r1 * self.width])

    def result(self) -> torch.Tensor:
        return self.scores


def semantic_inference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *,
                       mask_prob: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-pixel class scores from mask classification (MaskFormer Sec. 3.4, semantic inference);
    see :class:`SemanticScores`.

    Args:
        mask_cls: (N, K+1) class logits of one image.
        mask_pred: (N, H, W) mask logits.
        mask_prob: ``mask_pred.sigmoid()`` when the caller has it already; computed here otherwise.

    Returns:
        (K, H, W) float scores (not normalized across classes).
    """
    mask_cls = mask_cls.to(mask_pred.dtype)
    return run_outputs([SemanticScores(mask_cls, mask_pred.shape[-2:])], row_blocks(mask_pred, mask_prob))[0]
