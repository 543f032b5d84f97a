"""The "+ 6 Enc" pixel decoder of MaskFormer's COCO panoptic models (MaskFormer Sec. 4.1, A.2).

The FPN of :class:`BasePixelDecoder`, with a transformer encoder (DETR's) on the coarsest feature
before the top-down path; the encoder output also feeds the transformer decoder
(``TRANSFORMER_IN_FEATURE: "transformer_encoder"``).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.layers import Conv2d, ShapeSpec, c2_xavier_fill, get_norm
from segcore.modeling import SEM_SEG_HEADS_REGISTRY

from ..transformer.position_encoding import PositionEmbeddingSine
from ..transformer.transformer import TransformerEncoder, TransformerEncoderLayer
from .pixel_decoder import BasePixelDecoder

__all__ = ["TransformerEncoderOnly", "TransformerEncoderPixelDecoder"]


class TransformerEncoderOnly(nn.Module):
    """DETR's transformer encoder applied to a (B, C, H, W) map; returns the same shape."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: str = "relu",
                 normalize_before: bool = False):
        super().__init__()
        layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, normalize_before)
        self.encoder = TransformerEncoder(layer, num_encoder_layers, nn.LayerNorm(d_model) if normalize_before else None)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.d_model = d_model
        self.nhead = nhead

    def forward(self, src: torch.Tensor, mask: Optional[torch.Tensor], pos_embed: torch.Tensor) -> torch.Tensor:
        """src, pos_embed: (B, C, H, W); mask: (B, H, W) bool (True = padding) or None."""
        bs, c, h, w = src.shape
        memory = self.encoder(src.flatten(2).permute(2, 0, 1), src_key_padding_mask=None if mask is None else mask.flatten(1),
                              pos=pos_embed.flatten(2).permute(2, 0, 1))
        return memory.permute(1, 2, 0).reshape(bs, c, h, w)


@SEM_SEG_HEADS_REGISTRY.register()
class TransformerEncoderPixelDecoder(BasePixelDecoder):
    """BasePixelDecoder with a transformer encoder on the coarsest input feature.

    Extra modules: ``input_proj`` (1x1, C_coarsest → conv_dim), ``transformer`` (encoder of
    ``transformer_enc_layers`` layers) and a new ``layer_{n}`` (3x3, conv_dim → conv_dim) replacing
    the coarsest output conv; state-dict names and order equal the original's.

    ``forward_features(features)`` returns a ``PixelDecoderOutput`` whose
    ``transformer_encoder_features`` is the encoder output (B, conv_dim, H/32, W/32).
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, transformer_dropout: float, transformer_nheads: int,
                 transformer_dim_feedforward: int, transformer_enc_layers: int, transformer_pre_norm: bool,
                 conv_dim: int, mask_dim: int, norm: Optional[str] = None):
        super().__init__(input_shape, conv_dim=conv_dim, mask_dim=mask_dim, norm=norm)
        coarsest = max(input_shape.values(), key=lambda s: s.stride)
        self.input_proj = Conv2d(coarsest.channels, conv_dim, kernel_size=1)
        c2_xavier_fill(self.input_proj)
        self.transformer = TransformerEncoderOnly(d_model=conv_dim, dropout=transformer_dropout, nhead=transformer_nheads,
                                                  dim_feedforward=transformer_dim_feedforward,
                                                  num_encoder_layers=transformer_enc_layers,
                                                  normalize_before=transformer_pre_norm)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        output_conv = Conv2d(conv_dim, conv_dim, kernel_size=3, stride=1, padding=1, bias=norm == "" or norm is None,
                             norm=get_norm(norm, conv_dim), activation=F.relu_)
        c2_xavier_fill(output_conv)
        name = f"layer_{len(self.in_features)}"
        delattr(self, name)
        self.add_module(name, output_conv)
        self.output_convs[0] = output_conv

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        ret = super().from_config(cfg, input_shape)
        mf = cfg.MODEL.MASK_FORMER
        ret.update(transformer_dropout=mf.DROPOUT, transformer_nheads=mf.NHEADS,
                   transformer_dim_feedforward=mf.DIM_FEEDFORWARD,
                   transformer_enc_layers=cfg.MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS,
                   transformer_pre_norm=mf.PRE_NORM)
        return ret

    def decode_coarsest(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Project the coarsest level to conv_dim, run the transformer encoder on it (sine position
        encodings, no padding mask), then the level's output conv: (FPN output, encoder output)."""
        encoder_features = self.transformer(self.input_proj(x), None, self.pe_layer(x))
        return self.output_convs[0](encoder_features), encoder_features
