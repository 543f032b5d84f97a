"""MaskFormerHead: pixel decoder + transformer decoder (MaskFormer Sec. 3.3, Fig. 2)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from segcore.config import configurable
from segcore.layers import ShapeSpec
from segcore.modeling import SEM_SEG_HEADS_REGISTRY

from ..transformer.registry import build_transformer_decoder
from .feature_routing import select_transformer_input, transformer_in_channels
from .pixel_decoder_head import PixelDecoderHead

__all__ = ["MaskFormerHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class MaskFormerHead(PixelDecoderHead):
    """The segmentation module of MaskFormer (and of Mask2Former, with its decoders).

    Args:
        input_shape, num_classes, pixel_decoder, loss_weight, ignore_value: see
            :class:`PixelDecoderHead`.
        transformer_predictor: the transformer decoder (from ``TRANSFORMER_DECODER_REGISTRY``),
            called as ``predictor(x, mask_features, mask)``.
        transformer_in_feature: what the decoder reads: a backbone feature ("res5"),
            "transformer_encoder", "pixel_embedding" or "multi_scale_pixel_decoder"
            (see :mod:`.feature_routing`).

    Module names (as the original): ``pixel_decoder.*``, ``predictor.*``.

    ``forward(features, mask=None)`` takes the backbone's dict of (B, C_f, H_f, W_f) tensors and
    returns the decoder's dict: ``pred_logits`` (B, N, K+1), ``pred_masks`` (B, N, H/4, W/4) and,
    with deep supervision, ``aux_outputs`` (a list of the same for the intermediate layers).

    Raises:
        ValueError: (from_config / forward) an unknown ``transformer_in_feature``, or a pixel
            decoder that does not provide the input it names.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, pixel_decoder: nn.Module,
                 loss_weight: float = 1.0, ignore_value: int = -1, transformer_predictor: nn.Module,
                 transformer_in_feature: str):
        super().__init__(input_shape, num_classes=num_classes, pixel_decoder=pixel_decoder, loss_weight=loss_weight,
                         ignore_value=ignore_value)
        self.predictor = transformer_predictor
        self.transformer_in_feature = transformer_in_feature

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        ret = cls.pixel_decoder_head_config(cfg, input_shape)
        in_feature = cfg.MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE
        in_channels = transformer_in_channels(in_feature, input_shape, conv_dim=cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM,
                                              mask_dim=cfg.MODEL.SEM_SEG_HEAD.MASK_DIM)
        ret["transformer_in_feature"] = in_feature
        ret["transformer_predictor"] = build_transformer_decoder(cfg, in_channels, mask_classification=True)
        return ret

    def forward(self, features: Dict[str, torch.Tensor], mask: Optional[torch.Tensor] = None) -> dict:
        return self.layers(features, mask)

    def layers(self, features: Dict[str, torch.Tensor], mask: Optional[torch.Tensor] = None) -> dict:
        """Pixel decoder, then the transformer decoder on the input ``transformer_in_feature`` names."""
        decoded = self.pixel_decoder.forward_features(features)
        x = select_transformer_input(self.transformer_in_feature, features, decoded)
        return self.predictor(x, decoded.mask_features, mask)
