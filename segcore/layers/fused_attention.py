"""Choosing, per model, between fused attention kernels and the plain computation.

Attention layers that can run either a fused kernel (``F.scaled_dot_product_attention``) or the
written-out / ``nn.MultiheadAttention`` computation of the original implementations keep a boolean
attribute ``use_fused_attention`` (True by default), read at every call. The two paths compute
the same function up to float rounding; the plain one is what the original code does, useful to
compare with it exactly, to look at attention weights, or to debug. The choice belongs to each
model instance: two models in one process (or two threads) do not affect each other.
"""
from __future__ import annotations

from torch import nn

__all__ = ["FUSED_ATTENTION_ATTRIBUTE", "set_fused_attention"]

#: the attribute an attention module declares to take part
FUSED_ATTENTION_ATTRIBUTE = "use_fused_attention"


def set_fused_attention(model: nn.Module, enabled: bool) -> int:
    """Set ``use_fused_attention`` on every submodule of ``model`` (itself included) that has it.

    Args:
        model: any module.
        enabled: True for the fused kernels, False for the plain computation.

    Returns:
        int: how many modules were set (0 when the model has no such attention layer).
    """
    count = 0
    for module in model.modules():
        if hasattr(module, FUSED_ATTENTION_ATTRIBUTE):
            setattr(module, FUSED_ATTENTION_ATTRIBUTE, bool(enabled))
            count += 1
    return count
