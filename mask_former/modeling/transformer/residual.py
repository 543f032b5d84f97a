"""The residual connection with LayerNorm around a transformer sub-layer (Vaswani et al. 2017, Sec. 3.1).

Post-norm (the original transformer's, DETR's and Mask2Former's default): ``norm(x + dropout(branch(x)))``.
Pre-norm (``normalize_before``): ``x + dropout(branch(norm(x)))``. Every sub-layer of the DETR
transformer (MaskFormer) and of Mask2Former's decoder is written as one call of
:func:`residual_norm`.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

__all__ = ["residual_norm"]


def residual_norm(x: Tensor, branch: Callable[[Tensor], Tensor], norm: nn.Module, dropout: nn.Module,
                  normalize_before: bool) -> Tensor:
    """``x`` plus the sub-layer ``branch``, with ``norm`` after the sum (post-norm) or on the
    branch's input (pre-norm), and ``dropout`` on the branch's output.

    Args:
        x: float (..., C). branch: the sub-layer (attention or feed-forward), (..., C) -> (..., C).
        norm: a LayerNorm of width C. dropout: applied to the branch's output.
        normalize_before: pre-norm instead of post-norm.
    """
    if normalize_before:
        return x + dropout(branch(norm(x)))
    return norm(x + dropout(branch(x)))
