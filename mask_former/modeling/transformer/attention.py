"""``nn.MultiheadAttention`` computed with ``F.scaled_dot_product_attention`` (SDPA).

The decoders keep their ``nn.MultiheadAttention`` modules (so the state-dict names, e.g.
``self_attn.in_proj_weight``, stay the original's) but call :func:`multi_head_attention`, which
reads the module's weights and runs the fused attention kernel instead of
``nn.MultiheadAttention.forward``'s path with ``need_weights=True`` (which materializes the
attention weights, averages them over the heads and returns them, only to be thrown away).

The result equals ``module(query, key, value, attn_mask=..., key_padding_mask=...)[0]`` up to
float rounding (tested in ``tests/mask_former/modeling/transformer/test_attention.py``). The
module's own forward is used instead where the fused path would differ in what it computes:
dropout on the attention weights during training (it would draw other random numbers), and the
options the decoders never use (``add_bias_kv``, ``add_zero_attn``, separate key/value widths,
``batch_first``), and where the caller asks for it with ``fused=False``.

Which path runs is a property of each model, not of the process: the layers that call this keep
a ``use_fused_attention`` attribute (True by default) and pass it as ``fused``;
:func:`segcore.layers.set_fused_attention` sets it for a whole model, and ``build_model`` does so
from ``MODEL.FUSED_ATTENTION``. With it off, every call runs ``nn.MultiheadAttention.forward``
(the original implementations' arithmetic; its forward hooks then see the attention weights).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["multi_head_attention", "supports_fused_attention"]


def supports_fused_attention(module: nn.MultiheadAttention) -> bool:
    """Whether :func:`multi_head_attention` may replace ``module``'s forward (see the module docstring)."""
    return (module._qkv_same_embed_dim and module.bias_k is None and module.bias_v is None
            and not module.add_zero_attn and not module.batch_first
            and not (module.training and module.dropout > 0.0))


def multi_head_attention(module: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor, *,
                         attn_mask: Optional[Tensor] = None, key_padding_mask: Optional[Tensor] = None,
                         fused: bool = True) -> Tensor:
    """Multi-head attention with ``module``'s weights (Vaswani et al. 2017, Sec. 3.2.2).

    Args:
        module: the ``nn.MultiheadAttention`` whose projections are used.
        query: float (L, B, E); key, value: float (S, B, E), sequence-first.
        attn_mask: as ``nn.MultiheadAttention``: bool (L, S) or (B * heads, L, S), True where a
            query may NOT attend (entry ``b * heads + h``), or a float mask added to the logits.
        key_padding_mask: bool (B, S), True at padded keys, or None.
        fused: use the fused kernel where it computes the same thing; False always runs
            ``module``'s own forward.

    Returns:
        float (L, B, E), equal to ``module(query, key, value, attn_mask=attn_mask,
        key_padding_mask=key_padding_mask)[0]`` up to float rounding. A query whose keys are all
        masked is undefined (the module gives NaN, the fused kernel may give another value); the
        decoders never mask every key (see ``masked_attention_mask``).
    """
    if not fused or not supports_fused_attention(module) or (key_padding_mask is not None
                                                  and key_padding_mask.dtype != torch.bool):
        # the module's own path, exactly as before (its random numbers for dropout included)
        return module(query, key, value, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]
    length, batch, embed = query.shape
    heads = module.num_heads
    head_dim = embed // heads
    w_q, w_k, w_v = module.in_proj_weight.chunk(3)
    b_q = b_k = b_v = None
    if module.in_proj_bias is not None:
        b_q, b_k, b_v = module.in_proj_bias.chunk(3)
    # (L, B, E) -> (B, heads, L, head_dim), as views where the layout allows
    q = F.linear(query, w_q, b_q).view(length, batch, heads, head_dim).permute(1, 2, 0, 3)
    k = F.linear(key, w_k, b_k).view(key.shape[0], batch, heads, head_dim).permute(1, 2, 0, 3)
    v = F.linear(value, w_v, b_v).view(value.shape[0], batch, heads, head_dim).permute(1, 2, 0, 3)
    mask = _sdpa_mask(attn_mask, key_padding_mask, batch, heads, length, key.shape[0], q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.permute(2, 0, 1, 3).reshape(length, batch, embed)
    return F.linear(out, module.out_proj.weight, module.out_proj.bias)


def _sdpa_mask(attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor], batch: int, heads: int,
               length: int, source: int, dtype: torch.dtype) -> Optional[Tensor]:
    """``nn.MultiheadAttention``'s masks as one SDPA mask broadcastable to (B, heads, L, S):
    bool masks become True where attending IS allowed (SDPA's convention); a float mask stays
    additive (a bool key-padding mask is then added as -inf)."""
    mask = None
    if attn_mask is not None:
        if attn_mask.dim() == 3:
            attn_mask = attn_mask.view(batch, heads, length, source)
        mask = attn_mask.logical_not() if attn_mask.dtype == torch.bool else attn_mask.to(dtype)
    if key_padding_mask is not None:
        keep = key_padding_mask.logical_not().view(batch, 1, 1, source)
        if mask is None:
            mask = keep
        elif mask.dtype == torch.bool:
            mask = mask & keep
        else:
            mask = mask.masked_fill(~keep, float("-inf"))
    return mask
