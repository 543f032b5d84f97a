"""BranchMaskFormerHead: MaskFormer's head with SeMask's semantic branch (the original's registered name).

Jain et al., "SeMask" (2021), Sec. 3: next to the feature decoder (here MaskFormer's or
Mask2Former's pixel decoder and transformer decoder, whichever the config names, exactly as
:class:`~mask_former.modeling.heads.mask_former_head.MaskFormerHead` builds them), a lightweight
semantic decoder (:class:`~semask.modeling.heads.semantic_decoder.SemanticPriorDecoder`)
accumulates the semantic prior maps of the SeMask backbone's stages during training.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from mask_former.modeling.heads.mask_former_head import MaskFormerHead
from segcore.config import configurable
from segcore.layers import ShapeSpec
from segcore.modeling import SEM_SEG_HEADS_REGISTRY

from ..backbone.semask_swin import SEMANTIC_MAP_NAME
from .semantic_decoder import SemanticPriorDecoder

__all__ = ["BranchMaskFormerHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class BranchMaskFormerHead(MaskFormerHead):
    """:class:`MaskFormerHead` plus the semantic decoder over the backbone's semantic maps.

    Args:
        input_shape: as :class:`MaskFormerHead`; the semantic maps are read for the same features
            (``"{name}_sem_seg"`` for every name in ``in_features``), at their strides.
        kwargs: the other :class:`MaskFormerHead` arguments (num_classes, pixel_decoder,
            transformer_predictor, transformer_in_feature, ...).

    Module names are :class:`MaskFormerHead`'s (``pixel_decoder.*``, ``predictor.*``); the semantic
    decoder ``sem_head`` (the original's attribute name) has no parameters, so the state dict is
    the same as MaskFormerHead's.

    ``forward(features, mask=None)`` takes the backbone's outputs, which must include the semantic
    maps of a SeMask backbone (``D2SeMaskSwinTransformer``), and returns the transformer decoder's
    dict (``pred_logits``, ``pred_masks``, ``aux_outputs``) with

    - ``"semantic_stage_maps"``: the list of (B, K, H_i, W_i) semantic maps, finest first;
    - ``"semantic_prior"`` (training mode only; the decoder is a training-time branch, Sec. 3):
      (B, K, H, W) logits at the padded input resolution, from :meth:`semantic_prior`.

    Raises:
        ValueError: (forward) the features lack a semantic map.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], **kwargs):
        super().__init__(input_shape, **kwargs)
        self.semantic_map_names: List[str] = [f"{name}_{SEMANTIC_MAP_NAME}" for name in self.in_features]
        self.sem_head = SemanticPriorDecoder(feature_strides=[input_shape[name].stride for name in self.in_features])

    def forward(self, features: Dict[str, torch.Tensor], mask: Optional[torch.Tensor] = None) -> dict:
        maps = self.semantic_stage_maps(features)
        outputs = self.layers(features, mask)
        outputs["semantic_stage_maps"] = maps
        if self.training:
            outputs["semantic_prior"] = self.sem_head(maps)
        return outputs

    def semantic_stage_maps(self, features: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
        """The backbone's semantic maps of ``in_features``, finest first.

        Raises:
            ValueError: one is missing (a backbone without Semantic Layers).
        """
        missing = [name for name in self.semantic_map_names if name not in features]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs the semantic maps {missing} of a SeMask backbone "
                f"(MODEL.BACKBONE.NAME: D2SeMaskSwinTransformer); the backbone returned {sorted(features)}")
        return [features[name] for name in self.semantic_map_names]

    def semantic_prior(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The semantic decoder's (B, K, H, W) logits at the padded input size, in any mode."""
        return self.sem_head(self.semantic_stage_maps(features))
