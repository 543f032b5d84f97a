"""Mask2Former's pixel decoder: a multi-scale deformable-attention transformer encoder over the
1/32, 1/16 and 1/8 features, then an FPN step up to 1/4 (Mask2Former, Cheng et al., CVPR 2022,
Sec. 4.1 "Pixel decoder"; the encoder is Deformable DETR's, Zhu et al., ICLR 2021, Sec. 4.1).

Module and parameter names equal the original ``MSDeformAttnPixelDecoder``'s, so its checkpoints
load: ``input_proj.{i}.{0,1}``, ``transformer.level_embed``,
``transformer.encoder.layers.{j}.{self_attn.*, norm1, linear1, linear2, norm2}``,
``mask_features``, ``adapter_{i}`` and ``layer_{i}``.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.layers import Conv2d, GroupNorm, ShapeSpec, c2_xavier_fill
from segcore.modeling import SEM_SEG_HEADS_REGISTRY

from mask_former.modeling.heads.feature_routing import PixelDecoderOutput
from mask_former.modeling.heads.pixel_decoder import fpn_level_convs
from mask_former.modeling.transformer.position_encoding import PositionEmbeddingSine

from .msdeformattn_encoder import MSDeformAttnTransformerEncoderOnly

__all__ = ["MSDeformAttnPixelDecoder"]

#: Groups of the GroupNorm after each encoder input projection (a constant of the original code).
INPUT_PROJ_NORM_GROUPS = 32


def _fpn_level_count(encoder_strides: List[int], common_stride: int) -> int:
    """Number of FPN levels needed to go from the finest encoder stride down to ``common_stride``
    (one per factor of 2), e.g. 1 from stride 8 to 4."""
    finest = min(encoder_strides)
    ratio = finest // common_stride if common_stride > 0 else 0
    if common_stride <= 0 or finest % common_stride or ratio & (ratio - 1):
        raise ValueError(f"MSDeformAttnPixelDecoder: common_stride ({common_stride}) must divide the finest encoder "
                         f"stride ({finest}) by a power of 2")
    return int(math.log2(ratio))


@SEM_SEG_HEADS_REGISTRY.register()
class MSDeformAttnPixelDecoder(nn.Module):
    """Multi-scale deformable-attention pixel decoder (Mask2Former Sec. 4.1).

    The encoder features (``transformer_in_features``, res3..res5 by default) are projected to
    ``conv_dim`` (1x1 conv + GroupNorm(32)), encoded jointly by ``transformer_enc_layers``
    deformable-attention layers (sine position encodings + a learned level embedding), and
    cut back into maps; FPN steps (1x1 lateral conv, bilinear upsampling, 3x3 conv) then bring the
    finest encoder level down to ``common_stride`` using the finer backbone features (res2),
    and a 1x1 conv gives the mask features. The computation is in float32, even under autocast
    (as the original: deformable attention is not run in half precision).

    Args:
        input_shape: {name: ShapeSpec} of the backbone features used (e.g. res2..res5).
        transformer_dropout: dropout probability in the encoder.
        transformer_nheads: encoder attention heads.
        transformer_dim_feedforward: encoder feed-forward width (channels).
        transformer_enc_layers: encoder layers.
        conv_dim: width C of the encoder and the FPN (a multiple of 32, for the GroupNorm).
        mask_dim: channels of the mask features.
        norm: norm of the FPN convs ("GN", "" / None for none, ...). Without a norm the FPN convs
            have a bias (for None too, as MaskFormer's ``BasePixelDecoder`` here; the original gave
            them neither norm nor bias for None). The input projections always use GroupNorm(32).
        transformer_in_features: the features the encoder reads (a subset of ``input_shape``).
        common_stride: stride of the mask features (4).
        transformer_n_points: sampling points per head and level of the encoder.

    Raises:
        ValueError: a transformer feature is not in ``input_shape``; ``conv_dim`` is not a multiple
            of 32; ``common_stride`` does not divide the finest encoder stride by a power of 2; the
            finest inputs, which the FPN steps read (as in the original), are not at strides
            common_stride, 2 common_stride, ... up to the encoder's.

    ``forward_features(features)`` returns a
    :class:`~mask_former.modeling.heads.feature_routing.PixelDecoderOutput` of float32 tensors:
    ``mask_features`` (B, mask_dim, H/common_stride, W/common_stride); ``transformer_encoder_features``,
    the encoder's output at its coarsest level (B, conv_dim, H/32, W/32 for res5); ``multi_scale_features``,
    the first :attr:`num_multi_scale_levels` maps of [encoder levels (coarsest first), FPN levels],
    each (B, conv_dim, H/s, W/s) — for res2..res5 the encoder's 1/32, 1/16 and 1/8 maps. (H/s
    rounds as the backbone's strided convolutions do.)

    Deliberate generalization: the original's ``from_config`` fixes the encoder's feed-forward
    width (1024) and sampling points (4) and reads its heads from ``MODEL.MASK_FORMER.NHEADS``;
    here they come from ``MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_{DIM_FEEDFORWARD,
    N_POINTS, N_HEADS}``, whose defaults (1024, 4, 8) give the original model (every released
    config has ``MODEL.MASK_FORMER.NHEADS`` = ``..._N_HEADS`` = 8).
    """

    #: outputs (coarsest first) returned as multi-scale features (Mask2Former Sec. 3.2.2: 3 scales)
    num_multi_scale_levels = 3

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, transformer_dropout: float, transformer_nheads: int,
                 transformer_dim_feedforward: int, transformer_enc_layers: int, conv_dim: int, mask_dim: int,
                 norm: Optional[str] = None, transformer_in_features: List[str], common_stride: int,
                 transformer_n_points: int = 4):
        super().__init__()
        missing = [f for f in transformer_in_features if f not in input_shape]
        if not transformer_in_features or missing:
            raise ValueError(f"MSDeformAttnPixelDecoder: transformer_in_features {list(transformer_in_features)} must "
                             f"be a non-empty subset of the input features {sorted(input_shape)}; missing: {missing}")
        if conv_dim % INPUT_PROJ_NORM_GROUPS:
            raise ValueError(f"MSDeformAttnPixelDecoder: conv_dim ({conv_dim}) must be a multiple of "
                             f"{INPUT_PROJ_NORM_GROUPS} (GroupNorm after the input projections)")
        shapes = sorted(input_shape.items(), key=lambda kv: kv[1].stride)
        self.in_features = [k for k, _ in shapes]  # finest (res2) first
        encoder_shapes = [(k, v) for k, v in shapes if k in transformer_in_features]
        self.transformer_in_features = [k for k, _ in encoder_shapes]  # finest first
        self.transformer_feature_strides = [v.stride for _, v in encoder_shapes]
        self.transformer_num_feature_levels = len(encoder_shapes)
        self.common_stride = common_stride
        self.num_fpn_levels = _fpn_level_count(self.transformer_feature_strides, common_stride)
        # as the original, the FPN reads the finest inputs; they must continue the encoder's levels
        # down to common_stride, halving the stride at each step
        self.fpn_in_features = self.in_features[:self.num_fpn_levels]  # finest first
        fpn_strides = [input_shape[f].stride for f in self.fpn_in_features]
        if fpn_strides != [common_stride * 2 ** k for k in range(self.num_fpn_levels)]:
            raise ValueError(f"MSDeformAttnPixelDecoder: going from the encoder's finest stride "
                             f"{min(self.transformer_feature_strides)} down to common_stride {common_stride} needs "
                             f"the {self.num_fpn_levels} finest input feature(s) at strides "
                             f"{[common_stride * 2 ** k for k in range(self.num_fpn_levels)]}; the inputs are "
                             f"{self.in_features} at strides {[v.stride for _, v in shapes]}")

        # encoder input projections, coarsest level first
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(v.channels, conv_dim, kernel_size=1),
                          GroupNorm(INPUT_PROJ_NORM_GROUPS, conv_dim))
            for _, v in encoder_shapes[::-1])
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.transformer = MSDeformAttnTransformerEncoderOnly(
            d_model=conv_dim, nhead=transformer_nheads, num_encoder_layers=transformer_enc_layers,
            dim_feedforward=transformer_dim_feedforward, dropout=transformer_dropout,
            num_feature_levels=self.transformer_num_feature_levels, enc_n_points=transformer_n_points)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.mask_dim = mask_dim
        self.mask_features = Conv2d(conv_dim, mask_dim, kernel_size=1, stride=1, padding=0)
        c2_xavier_fill(self.mask_features)

        # FPN levels below the encoder; adapter_1 / layer_1 for the finest input (res2)
        lateral_convs, output_convs = [], []
        for idx, name in enumerate(self.fpn_in_features):
            lateral_conv, output_conv = fpn_level_convs(input_shape[name].channels, conv_dim, norm)
            self.add_module(f"adapter_{idx + 1}", lateral_conv)
            self.add_module(f"layer_{idx + 1}", output_conv)
            lateral_convs.append(lateral_conv)
            output_convs.append(output_conv)
        # top-down order: coarsest FPN level first
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in head.IN_FEATURES},
            "conv_dim": head.CONVS_DIM,
            "mask_dim": head.MASK_DIM,
            "norm": head.NORM,
            "transformer_dropout": cfg.MODEL.MASK_FORMER.DROPOUT,
            "transformer_nheads": head.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS,
            "transformer_dim_feedforward": head.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD,
            "transformer_enc_layers": head.TRANSFORMER_ENC_LAYERS,
            "transformer_in_features": list(head.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES),
            "common_stride": head.COMMON_STRIDE,
            "transformer_n_points": head.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS,
        }

    def forward_features(self, features: Dict[str, Tensor]) -> PixelDecoderOutput:
        """Decode the backbone's ``features`` ({name: (B, C_name, H/s, W/s)}, any floating dtype),
        in float32 with autocast disabled; see the class docstring for the outputs.

        Raises:
            KeyError: ``features`` lacks an input feature.
        """
        missing = [f for f in self.in_features if f not in features]
        if missing:
            raise KeyError(f"MSDeformAttnPixelDecoder: features lack {missing} (got {sorted(features)})")
        device_type = features[self.in_features[0]].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._decode(features)

    def _decode(self, features: Dict[str, Tensor]) -> PixelDecoderOutput:
        srcs, pos = [], []
        for proj, name in zip(self.input_proj, self.transformer_in_features[::-1]):
            x = features[name].float()
            srcs.append(proj(x))
            pos.append(self.pe_layer(x))
        memory = self.transformer(srcs, pos)  # (B, S, C)
        shapes = [src.shape[-2:] for src in srcs]
        levels = memory.split([h * w for h, w in shapes], dim=1)
        outs = [z.transpose(1, 2).reshape(z.shape[0], -1, h, w) for z, (h, w) in zip(levels, shapes)]
        for lateral_conv, output_conv, name in zip(self.lateral_convs, self.output_convs, self.fpn_in_features[::-1]):
            lateral = lateral_conv(features[name].float())
            upsampled = F.interpolate(outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            outs.append(output_conv(lateral + upsampled))
        return PixelDecoderOutput(self.mask_features(outs[-1]), outs[0], outs[:self.num_multi_scale_levels])

    def forward(self, features: Dict[str, Tensor], targets=None):
        raise RuntimeError("Pixel decoders are used through forward_features(features), not forward()")
