"""MaskFormer's FPN pixel decoder (MaskFormer Sec. 3.3 and A.1: "a light-weight FPN")."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.layers import Conv2d, ShapeSpec, c2_xavier_fill, get_norm
from segcore.modeling import SEM_SEG_HEADS_REGISTRY
from segcore.utils.registry import get_registered

from .feature_routing import PixelDecoderOutput

__all__ = ["BasePixelDecoder", "build_pixel_decoder", "fpn_level_convs"]


def build_pixel_decoder(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the pixel decoder named by ``MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME``.

    Pixel decoders are registered in ``SEM_SEG_HEADS_REGISTRY`` (as in the original code) and must
    have ``forward_features(features) -> PixelDecoderOutput`` (mask features, transformer-encoder
    features, multi-scale features).

    Raises:
        KeyError: the name is not registered.
        TypeError: the module has no ``forward_features``.
    """
    name = cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME
    model = get_registered(SEM_SEG_HEADS_REGISTRY, name, "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME")(cfg, input_shape)
    if not callable(getattr(model, "forward_features", None)):
        raise TypeError(f"Pixel decoder '{name}' has no forward_features(features) method")
    return model


def fpn_level_convs(in_channels: int, conv_dim: int, norm: Optional[str], *,
                    lateral: bool = True) -> Tuple[Optional[Conv2d], Conv2d]:
    """The convolutions of one FPN level of the pixel decoders (MaskFormer's ``BasePixelDecoder``,
    Mask2Former's ``MSDeformAttnPixelDecoder``): the lateral 1x1 convolution ``in_channels`` ->
    ``conv_dim`` (``adapter_{i}``) and the output 3x3 convolution ``conv_dim`` -> ``conv_dim`` with
    ReLU (``layer_{i}``), both with ``norm`` (a bias only without one), Caffe2-Xavier initialized
    after both are built (the original's order of random draws). With ``lateral=False`` (the
    coarsest level of ``BasePixelDecoder``): no lateral convolution, and the output convolution
    reads ``in_channels``.

    Returns:
        ``(lateral_conv or None, output_conv)``.
    """
    bias = not norm
    lateral_conv = None
    if lateral:
        lateral_conv = Conv2d(in_channels, conv_dim, kernel_size=1, bias=bias, norm=get_norm(norm, conv_dim))
    output_conv = Conv2d(conv_dim if lateral else in_channels, conv_dim, kernel_size=3, stride=1, padding=1, bias=bias,
                         norm=get_norm(norm, conv_dim), activation=F.relu_)
    for conv in (lateral_conv, output_conv):
        if conv is not None:
            c2_xavier_fill(conv)
    return lateral_conv, output_conv


@SEM_SEG_HEADS_REGISTRY.register()
class BasePixelDecoder(nn.Module):
    """Top-down FPN over backbone features, then a 3x3 conv to per-pixel embeddings.

    Module names: ``layer_{i}`` (3x3 output convs), ``adapter_{i}`` (1x1 lateral convs; none for the
    coarsest level), ``mask_features``, with i = 1 for the finest input (res2).

    Args:
        input_shape: {name: ShapeSpec} of the features used (sorted by stride internally).
        conv_dim: FPN width. mask_dim: per-pixel embedding width. norm: norm of the FPN convs.

    ``forward_features(features)`` returns a :class:`PixelDecoderOutput`: ``mask_features``
    (B, mask_dim, H/s, W/s) at the finest input stride s (4 for res2), no encoder features, and
    the first :attr:`num_multi_scale_levels` FPN outputs from the coarsest (B, conv_dim, ...)
    as multi-scale features (Mask2Former's multi-scale variant of this decoder).

    Subclasses change how the coarsest level is decoded by overriding :meth:`decode_coarsest`.
    """

    #: FPN levels (coarsest first) returned as multi-scale features (Mask2Former Sec. 3.2.2: 3 scales)
    num_multi_scale_levels = 3

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, conv_dim: int, mask_dim: int,
                 norm: Optional[str] = None):
        super().__init__()
        input_shape = sorted(input_shape.items(), key=lambda x: x[1].stride)
        self.in_features = [k for k, _ in input_shape]
        feature_channels = [v.channels for _, v in input_shape]
        lateral_convs, output_convs = [], []
        for idx, in_channels in enumerate(feature_channels):
            lateral_conv, output_conv = fpn_level_convs(in_channels, conv_dim, norm,
                                                        lateral=idx != len(self.in_features) - 1)
            if lateral_conv is not None:
                self.add_module(f"adapter_{idx + 1}", lateral_conv)
            self.add_module(f"layer_{idx + 1}", output_conv)
            lateral_convs.append(lateral_conv)
            output_convs.append(output_conv)
        # top-down order: coarsest (res5) first
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]
        self.mask_dim = mask_dim
        self.mask_features = Conv2d(conv_dim, mask_dim, kernel_size=3, stride=1, padding=1)
        c2_xavier_fill(self.mask_features)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in head.IN_FEATURES},
            "conv_dim": head.CONVS_DIM,
            "mask_dim": head.MASK_DIM,
            "norm": head.NORM,
        }

    def decode_coarsest(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The FPN output of the coarsest input level ``x``, and the encoder features (none here)."""
        return self.output_convs[0](x), None

    def forward_features(self, features: Dict[str, torch.Tensor]) -> PixelDecoderOutput:
        """Top-down FPN over ``features`` (the backbone's dict); see the class docstring."""
        multi_scale_features = []
        y = encoder_features = None
        for idx, f in enumerate(self.in_features[::-1]):
            x = features[f]
            if idx == 0:
                y, encoder_features = self.decode_coarsest(x)
            else:
                cur_fpn = self.lateral_convs[idx](x)
                y = self.output_convs[idx](cur_fpn + F.interpolate(y, size=cur_fpn.shape[-2:], mode="nearest"))
            if len(multi_scale_features) < self.num_multi_scale_levels:
                multi_scale_features.append(y)
        return PixelDecoderOutput(self.mask_features(y), encoder_features, multi_scale_features)

    def forward(self, features: Dict[str, torch.Tensor], targets=None):
        raise RuntimeError("Pixel decoders are used through forward_features(features), not forward()")
