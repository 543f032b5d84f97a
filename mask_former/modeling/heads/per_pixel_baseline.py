"""The per-pixel classification baselines of MaskFormer (Cheng et al., NeurIPS 2021, Sec. 4.1 and
Table 1/A): "PerPixelBaseline" (the MaskFormer pixel decoder + a 1x1 classifier) and
"PerPixelBaseline+" (the pixel decoder + the transformer module, whose N = K query embeddings act
as a per-pixel classifier). Both run under :class:`segcore.modeling.SemanticSegmentor` and are
trained with a per-pixel cross-entropy computed in the head."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.layers import Conv2d, ShapeSpec, c2_msra_fill
from segcore.modeling import SEM_SEG_HEADS_REGISTRY
from segcore.modeling.meta_arch.semantic_seg import per_pixel_cross_entropy

from ..transformer.registry import build_transformer_decoder
from .feature_routing import select_transformer_input, transformer_in_channels
from .pixel_decoder_head import PixelDecoderHead

__all__ = ["PerPixelBaselineHead", "PerPixelBaselinePlusHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class PerPixelBaselineHead(PixelDecoderHead):
    """PerPixelBaseline: pixel decoder + a 1x1 conv classifier over the per-pixel embeddings.

    Args:
        input_shape: {name: ShapeSpec} of the backbone features the pixel decoder reads.
        num_classes: K.
        pixel_decoder: a module with ``mask_dim`` and ``forward_features(features) ->
            (mask_features (B, mask_dim, H/4, W/4), ...)``.
        loss_weight: multiplier of the cross-entropy.
        ignore_value: label of pixels excluded from the loss (255 for ADE20K).

    Module names (as the original): ``pixel_decoder.*``, ``predictor`` (Conv2d mask_dim -> K).

    ``forward(features, targets=None)``: features {name: (B, C_f, H_f, W_f)}; targets int64
    (B, H, W) with H, W the padded input size (4x the pixel decoder output). Training returns
    ``(None, {"loss_sem_seg": scalar})``; eval returns ``((B, K, H, W) float logits, {})``.

    Raises:
        ValueError: training without targets, or targets of another size.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, pixel_decoder: nn.Module,
                 loss_weight: float = 1.0, ignore_value: int = -1):
        super().__init__(input_shape, num_classes=num_classes, pixel_decoder=pixel_decoder, loss_weight=loss_weight,
                         ignore_value=ignore_value)
        self.predictor = Conv2d(self.pixel_decoder.mask_dim, num_classes, kernel_size=1, stride=1, padding=0)
        c2_msra_fill(self.predictor)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        return cls.pixel_decoder_head_config(cfg, input_shape)

    def forward(self, features: Dict[str, torch.Tensor], targets: Optional[torch.Tensor] = None):
        x = self.layers(features)
        if self.training:
            return None, self.losses(x, targets)
        return self._upsample(x), {}

    def layers(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-pixel class logits (B, K, H/4, W/4)."""
        return self.predictor(self.pixel_decoder.forward_features(features).mask_features)

    def losses(self, predictions: torch.Tensor, targets: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``{"loss_sem_seg": loss_weight * CE}``: the mean cross-entropy over non-ignored pixels of the
        logits upsampled 4x (bilinear, computed in float32)."""
        return {"loss_sem_seg": per_pixel_cross_entropy(predictions, targets, self.common_stride, self.ignore_value)
                * self.loss_weight}

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.common_stride, mode="bilinear", align_corners=False)


@SEM_SEG_HEADS_REGISTRY.register()
class PerPixelBaselinePlusHead(PerPixelBaselineHead):
    """PerPixelBaseline+: pixel decoder + MaskFormer's transformer module used as a per-pixel classifier.

    The :class:`TransformerPredictor` (``mask_classification=False``) decodes N = K queries; query
    k's mask embedding dotted with the per-pixel embeddings is the logit of class k, so its
    ``pred_masks`` (B, K, H/4, W/4) are the per-pixel class logits.

    Args:
        input_shape, num_classes, pixel_decoder, loss_weight, ignore_value: as
            :class:`PerPixelBaselineHead`.
        transformer_predictor: the query decoder with ``num_queries == num_classes`` and no class head.
        transformer_in_feature: the backbone feature it reads ("res5"), or "transformer_encoder"
            for the pixel decoder's encoder output.
        deep_supervision: also supervise every intermediate decoder layer (``loss_sem_seg_{i}``,
            i = 0..L-2, each weighted by ``loss_weight``); needs a predictor built with deep supervision.

    Module names (as the original): ``pixel_decoder.*``, ``predictor.*`` (the transformer predictor).

    Raises:
        ValueError: ``num_queries != num_classes``, a predictor that classifies masks, deep
            supervision requested from a predictor without it, or (in forward) missing encoder
            features for ``transformer_in_feature="transformer_encoder"``.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, transformer_predictor: nn.Module,
                 transformer_in_feature: str, deep_supervision: bool, num_classes: int, pixel_decoder: nn.Module,
                 loss_weight: float = 1.0, ignore_value: int = -1):
        super().__init__(input_shape, num_classes=num_classes, pixel_decoder=pixel_decoder,
                         loss_weight=loss_weight, ignore_value=ignore_value)
        if getattr(transformer_predictor, "num_queries", num_classes) != num_classes:
            raise ValueError(f"PerPixelBaselinePlusHead needs one query per class: MODEL.MASK_FORMER."
                             f"NUM_OBJECT_QUERIES={transformer_predictor.num_queries} must equal "
                             f"MODEL.SEM_SEG_HEAD.NUM_CLASSES={num_classes}")
        if getattr(transformer_predictor, "mask_classification", False):
            raise ValueError("PerPixelBaselinePlusHead needs a TransformerPredictor built with "
                             "mask_classification=False")
        if deep_supervision and not getattr(transformer_predictor, "aux_loss", True):
            raise ValueError("deep_supervision=True needs a transformer predictor built with deep supervision")
        del self.predictor
        self.predictor = transformer_predictor
        self.transformer_in_feature = transformer_in_feature
        self.deep_supervision = deep_supervision

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        ret = super().from_config(cfg, input_shape)
        in_feature = cfg.MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE
        in_channels = transformer_in_channels(in_feature, input_shape, conv_dim=cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM,
                                              mask_dim=cfg.MODEL.SEM_SEG_HEAD.MASK_DIM)
        ret["transformer_in_feature"] = in_feature
        ret["transformer_predictor"] = build_transformer_decoder(cfg, in_channels, mask_classification=False)
        ret["deep_supervision"] = cfg.MODEL.MASK_FORMER.DEEP_SUPERVISION
        return ret

    def forward(self, features: Dict[str, torch.Tensor], targets: Optional[torch.Tensor] = None):
        x, aux_outputs = self.layers(features)
        if self.training:
            losses = self.losses(x, targets)
            if self.deep_supervision:
                for i, aux in enumerate(aux_outputs):
                    losses[f"loss_sem_seg_{i}"] = self.losses(aux["pred_masks"], targets)["loss_sem_seg"]
            return None, losses
        return self._upsample(x), {}

    def layers(self, features: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Optional[List[dict]]]:
        """Per-pixel class logits (B, K, H/4, W/4) of the last decoder layer, and the intermediate
        layers' ``[{"pred_masks": ...}]`` (None without deep supervision)."""
        decoded = self.pixel_decoder.forward_features(features)
        x = select_transformer_input(self.transformer_in_feature, features, decoded)
        predictions = self.predictor(x, decoded.mask_features)
        if self.deep_supervision:
            return predictions["pred_masks"], predictions["aux_outputs"]
        return predictions["pred_masks"], None
