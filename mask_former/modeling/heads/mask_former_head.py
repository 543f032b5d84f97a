"""MaskFormerHead: pixel decoder + transformer predictor (MaskFormer Sec. 3.3, Fig. 2)."""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from segcore.config import configurable
from segcore.layers import ShapeSpec
from segcore.modeling import SEM_SEG_HEADS_REGISTRY

from ..transformer.transformer_predictor import TransformerPredictor
from .pixel_decoder import build_pixel_decoder

__all__ = ["MaskFormerHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class MaskFormerHead(nn.Module):
    """The segmentation module of MaskFormer.

    Args:
        input_shape: {name: ShapeSpec} of the backbone features the pixel decoder reads.
        num_classes: K (without "no object"). pixel_decoder: module with ``forward_features``.
        loss_weight, ignore_value: kept for config compatibility (losses live in the criterion).
        transformer_predictor: the query decoder. transformer_in_feature: the backbone feature
            the predictor reads ("res5"), or "transformer_encoder" for the pixel decoder's
            encoder output.

    ``forward(features)`` takes the backbone's dict of (B, C_f, H_f, W_f) tensors and returns the
    predictor's dict (``pred_logits`` (B, N, K+1), ``pred_masks`` (B, N, H/4, W/4), ``aux_outputs``).
    """

    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            # Early MaskFormer checkpoints kept pixel-decoder weights directly under the head.
            for k in list(state_dict.keys()):
                if k.startswith(prefix) and not k.startswith(prefix + "predictor") \
                        and not k.startswith(prefix + "pixel_decoder"):
                    state_dict[k.replace(prefix, prefix + "pixel_decoder.", 1)] = state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, pixel_decoder: nn.Module,
                 loss_weight: float = 1.0, ignore_value: int = -1, transformer_predictor: nn.Module,
                 transformer_in_feature: str):
        super().__init__()
        input_shape = sorted(input_shape.items(), key=lambda x: x[1].stride)
        self.in_features = [k for k, _ in input_shape]
        self.ignore_value = ignore_value
        self.common_stride = 4
        self.loss_weight = loss_weight
        self.pixel_decoder = pixel_decoder
        self.predictor = transformer_predictor
        self.transformer_in_feature = transformer_in_feature
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        in_feature = cfg.MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE
        if in_feature == "transformer_encoder":
            predictor_in = cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM
        elif in_feature in input_shape:
            predictor_in = input_shape[in_feature].channels
        else:
            raise ValueError(f"MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE='{in_feature}' is not a backbone output "
                             f"({sorted(input_shape)}) nor 'transformer_encoder'")
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES},
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "pixel_decoder": build_pixel_decoder(cfg, input_shape),
            "loss_weight": cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT,
            "transformer_in_feature": in_feature,
            "transformer_predictor": TransformerPredictor(cfg, predictor_in, mask_classification=True),
        }

    def forward(self, features: Dict[str, torch.Tensor]) -> dict:
        return self.layers(features)

    def layers(self, features: Dict[str, torch.Tensor]) -> dict:
        mask_features, transformer_encoder_features = self.pixel_decoder.forward_features(features)[:2]
        if self.transformer_in_feature == "transformer_encoder":
            if transformer_encoder_features is None:
                raise ValueError("TRANSFORMER_IN_FEATURE='transformer_encoder' needs a pixel decoder with an encoder")
            return self.predictor(transformer_encoder_features, mask_features)
        return self.predictor(features[self.transformer_in_feature], mask_features)
