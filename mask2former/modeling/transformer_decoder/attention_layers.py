"""The three sub-layers of a Mask2Former decoder layer (Cheng et al., CVPR 2022, Sec. 3.2 and Fig. 2):
masked cross-attention, query self-attention and the feed-forward network.

Each sub-layer adds its branch to its input through a residual connection and one LayerNorm,
after the sum (post-norm, the default, as Vaswani et al. 2017) or on the branch's input (pre-norm,
``normalize_before=True``). Sequences are sequence-first, (L, B, C), as ``nn.MultiheadAttention``
expects without ``batch_first``.

Module names (``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm``) equal the
original implementation's so its checkpoints load. The attention modules are
``nn.MultiheadAttention``; they are run through
:func:`mask_former.modeling.transformer.attention.multi_head_attention` (the fused
``scaled_dot_product_attention`` kernel, equal up to float rounding).
"""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn
from torch.nn import functional as F

from mask_former.modeling.transformer.attention import multi_head_attention
from mask_former.modeling.transformer.residual import residual_norm

__all__ = ["CrossAttentionLayer", "FFNLayer", "ResidualNormLayer", "SelfAttentionLayer"]


def _with_pos_embed(tensor: Tensor, pos: Optional[Tensor]) -> Tensor:
    return tensor if pos is None else tensor + pos


class ResidualNormLayer(nn.Module):
    """Base of the sub-layers: a branch wrapped in a residual connection and a LayerNorm.

    A subclass builds its branch modules first, then calls :meth:`_build_residual` (so the
    state-dict order, branch before ``norm``, is the original's), and calls :meth:`_residual`
    in its forward.

    ``use_fused_attention`` (default True): the attention sub-layers run the fused kernel
    (:func:`~mask_former.modeling.transformer.attention.multi_head_attention`); False runs
    ``nn.MultiheadAttention``'s own forward. Set for a whole model by ``set_fused_attention``.
    """

    use_fused_attention = True

    def _build_residual(self, d_model: int, dropout: float, normalize_before: bool) -> None:
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def _residual(self, x: Tensor, branch: Callable[[Tensor], Tensor]) -> Tensor:
        """Post-norm: ``norm(x + branch(x))``; pre-norm: ``x + branch(norm(x))`` (dropout on the branch;
        :func:`~mask_former.modeling.transformer.residual.residual_norm`, as MaskFormer's layers)."""
        return residual_norm(x, branch, self.norm, self.dropout, self.normalize_before)

    def _reset_parameters(self) -> None:
        """Xavier-uniform for every matrix (the original's initialization); biases and norms keep theirs."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)


class SelfAttentionLayer(ResidualNormLayer):
    """Multi-head self-attention among the queries (Mask2Former Sec. 3.2; DETR's decoder self-attention).

    Args:
        d_model: query width C. nhead: attention heads (C must be divisible by it).
        dropout: dropout on the attention weights and the branch (0.0 in Mask2Former, Sec. 3.2.3).
        normalize_before: pre-norm instead of post-norm.

    ``forward(tgt, tgt_mask=None, tgt_key_padding_mask=None, query_pos=None)``: tgt and query_pos
    float (Q, B, C); the query positions are added to queries and keys, not to values. The masks
    follow ``nn.MultiheadAttention`` (bool, True = may not attend). Returns float (Q, B, C).
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self._build_residual(d_model, dropout, normalize_before)
        self._reset_parameters()

    def forward(self, tgt: Tensor, tgt_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        def attend(x: Tensor) -> Tensor:
            q = k = _with_pos_embed(x, query_pos)
            return multi_head_attention(self.self_attn, q, k, x, attn_mask=tgt_mask,
                                        key_padding_mask=tgt_key_padding_mask, fused=self.use_fused_attention)

        return self._residual(tgt, attend)


class CrossAttentionLayer(ResidualNormLayer):
    """Multi-head attention from the queries to image features, optionally masked (Sec. 3.2.1, Eq. 2).

    Args:
        d_model: query and feature width C. nhead: attention heads.
        dropout: dropout on the attention weights and the branch (0.0 in Mask2Former).
        normalize_before: pre-norm instead of post-norm.

    ``forward(tgt, memory, memory_mask=None, memory_key_padding_mask=None, pos=None, query_pos=None)``:
    tgt, query_pos float (Q, B, C); memory, pos float (HW, B, C) (positions are added to the
    keys, not to the values); memory_mask bool (B * nhead, Q, HW), True where a query may not
    attend, laid out head-minor (entry ``b * nhead + h``) as ``nn.MultiheadAttention`` expects.
    A row of memory_mask must not be all True (the softmax would be NaN). Returns float (Q, B, C).
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self._build_residual(d_model, dropout, normalize_before)
        self._reset_parameters()

    def forward(self, tgt: Tensor, memory: Tensor, memory_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        def attend(x: Tensor) -> Tensor:
            return multi_head_attention(self.multihead_attn, _with_pos_embed(x, query_pos),
                                        _with_pos_embed(memory, pos), memory, attn_mask=memory_mask,
                                        key_padding_mask=memory_key_padding_mask,
                                        fused=self.use_fused_attention)

        return self._residual(tgt, attend)


class FFNLayer(ResidualNormLayer):
    """Position-wise feed-forward network ``linear2(activation(linear1(x)))`` (Vaswani et al. 2017, Sec. 3.3).

    Args:
        d_model: width C. dim_feedforward: hidden width (``MODEL.MASK_FORMER.DIM_FEEDFORWARD``).
        dropout: dropout after the activation and on the branch (0.0 in Mask2Former).
        activation: the nonlinearity, a function of a tensor (ReLU in the original).
        normalize_before: pre-norm instead of post-norm.

    ``forward(tgt)``: float (..., C) -> float (..., C).
    """

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0,
                 activation: Callable[[Tensor], Tensor] = F.relu, normalize_before: bool = False):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.activation = activation
        self._build_residual(d_model, dropout, normalize_before)
        self._reset_parameters()

    def forward(self, tgt: Tensor) -> Tensor:
        return self._residual(tgt, lambda x: self.linear2(self.dropout(self.activation(self.linear1(x)))))
