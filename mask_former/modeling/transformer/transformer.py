"""The DETR transformer (Carion et al., ECCV 2020, Sec. 3.2 and Fig. 10) used by MaskFormer.

Module names (``encoder.layers.N``, ``decoder.layers.N.self_attn``, ``multihead_attn``,
``linear1``, ``linear2``, ``norm1..3``, ``decoder.norm``) equal the original MaskFormer code so
its checkpoints load. Sequences are (L, N, C) ("sequence first"), as in ``nn.MultiheadAttention``.
Every sub-layer is a residual connection with LayerNorm (:func:`~.residual.residual_norm`, post-norm
or pre-norm), as in Mask2Former's decoder. The attention modules are ``nn.MultiheadAttention``, run through
:func:`~mask_former.modeling.transformer.attention.multi_head_attention` (the fused
``scaled_dot_product_attention`` kernel; the module's own forward where dropout is active).
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .attention import multi_head_attention
from .residual import residual_norm

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
           "TransformerDecoderLayer"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}


def _get_activation_fn(name: str):
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation should be one of {sorted(_ACTIVATIONS)}, not {name}")
    return _ACTIVATIONS[name]


def _with_pos_embed(tensor: Tensor, pos: Optional[Tensor]) -> Tensor:
    return tensor if pos is None else tensor + pos


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward, post-norm (default) or pre-norm (``normalize_before``).

    ``use_fused_attention`` (default True): run the attention with the fused kernel
    (:func:`~mask_former.modeling.transformer.attention.multi_head_attention`); False runs
    ``nn.MultiheadAttention``'s own forward. Set for a whole model by ``set_fused_attention``.
    """

    use_fused_attention = True

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", normalize_before: bool = False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = _get_activation_fn(activation)
        self.normalize_before = normalize_before

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None) -> Tensor:
        """src, pos: (HW, N, C); src_key_padding_mask: (N, HW) bool, True = padding."""
        def self_attention(x: Tensor) -> Tensor:
            q = k = _with_pos_embed(x, pos)
            return multi_head_attention(self.self_attn, q, k, x, attn_mask=src_mask,
                                        key_padding_mask=src_key_padding_mask, fused=self.use_fused_attention)

        src = residual_norm(src, self_attention, self.norm1, self.dropout1, self.normalize_before)
        return residual_norm(src, self._feed_forward, self.norm2, self.dropout2, self.normalize_before)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class TransformerDecoderLayer(nn.Module):
    """Query self-attention, cross-attention to the image features, feed-forward.

    ``use_fused_attention``: as in :class:`TransformerEncoderLayer`.
    """

    use_fused_attention = True

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", normalize_before: bool = False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = _get_activation_fn(activation)
        self.normalize_before = normalize_before

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        """tgt, query_pos: (Q, N, C); memory, pos: (HW, N, C). Returns (Q, N, C)."""
        def self_attention(x: Tensor) -> Tensor:
            q = k = _with_pos_embed(x, query_pos)
            return multi_head_attention(self.self_attn, q, k, x, attn_mask=tgt_mask,
                                        key_padding_mask=tgt_key_padding_mask, fused=self.use_fused_attention)

        def cross_attention(x: Tensor) -> Tensor:
            return multi_head_attention(self.multihead_attn, _with_pos_embed(x, query_pos),
                                        _with_pos_embed(memory, pos), memory, attn_mask=memory_mask,
                                        key_padding_mask=memory_key_padding_mask, fused=self.use_fused_attention)

        tgt = residual_norm(tgt, self_attention, self.norm1, self.dropout1, self.normalize_before)
        tgt = residual_norm(tgt, cross_attention, self.norm2, self.dropout2, self.normalize_before)
        return residual_norm(tgt, self._feed_forward, self.norm3, self.dropout3, self.normalize_before)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class TransformerEncoder(nn.Module):
    """A stack of encoder layers with an optional final norm (used with pre-norm)."""

    def __init__(self, encoder_layer: nn.Module, num_layers: int, norm: Optional[nn.Module] = None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                pos: Optional[Tensor] = None) -> Tensor:
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask, pos=pos)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(nn.Module):
    """A stack of decoder layers; with ``return_intermediate`` returns every layer's normalized output.

    Returns (L, Q, N, C): L = num_layers with ``return_intermediate`` else 1.
    """

    def __init__(self, decoder_layer: nn.Module, num_layers: int, norm: Optional[nn.Module] = None,
                 return_intermediate: bool = False):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.return_intermediate = return_intermediate

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        output = tgt
        intermediate = []
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask, pos=pos, query_pos=query_pos)
            if self.return_intermediate:
                intermediate.append(self.norm(output) if self.norm is not None else output)
        if self.return_intermediate:
            return torch.stack(intermediate)
        if self.norm is not None:
            output = self.norm(output)
        return output.unsqueeze(0)


class Transformer(nn.Module):
    """DETR encoder-decoder over flattened image features.

    Args:
        d_model: feature width C. nhead: attention heads. num_encoder_layers /
        num_decoder_layers: depths (MaskFormer uses 0 / 6). dim_feedforward: FFN width.
        dropout: dropout rate. activation: "relu" | "gelu" | "glu". normalize_before: pre-norm.
        return_intermediate_dec: return every decoder layer's output (deep supervision).

    ``forward(src, mask, query_embed, pos_embed)``: src (N, C, H, W); mask (N, H, W) bool or None;
    query_embed (Q, C); pos_embed (N, C, H, W). Returns ``hs`` (L, N, Q, C) and ``memory``
    (N, C, H, W).
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", normalize_before: bool = False, return_intermediate_dec: bool = False):
        super().__init__()
        encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, normalize_before)
        encoder_norm = nn.LayerNorm(d_model) if normalize_before else None
        self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        decoder_layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, normalize_before)
        self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, nn.LayerNorm(d_model),
                                          return_intermediate=return_intermediate_dec)
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src: Tensor, mask: Optional[Tensor], query_embed: Tensor, pos_embed: Tensor):
        bs, c, h, w = src.shape
        src = src.flatten(2).permute(2, 0, 1)
        pos_embed = pos_embed.flatten(2).permute(2, 0, 1)
        query_embed = query_embed.unsqueeze(1).repeat(1, bs, 1)
        if mask is not None:
            mask = mask.flatten(1)
        tgt = torch.zeros_like(query_embed)
        memory = self.encoder(src, src_key_padding_mask=mask, pos=pos_embed)
        hs = self.decoder(tgt, memory, memory_key_padding_mask=mask, pos=pos_embed, query_pos=query_embed)
        return hs.transpose(1, 2), memory.permute(1, 2, 0).reshape(bs, c, h, w)
