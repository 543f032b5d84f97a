"""BranchFPNHead: the Semantic-FPN head of SeMask-FPN with SeMask's semantic branch (the original's name).

Jain et al., "SeMask" (2021), Sec. 3 and the Semantic-FPN rows of its main tables; the decoder is
the semantic branch of Panoptic FPN (Kirillov et al., "Panoptic Feature Pyramid Networks", CVPR
2019, Sec. 3) as mmsegmentation's ``FPNHead`` builds it, applied directly to the four stages of
the SeMask Swin backbone (the release has no FPN neck: its ``configs/_base_/models/
semfpn_semask_swin.py`` names a backbone and this head only). What the release's
``SeMask-FPN/mmseg/models/decode_heads/branch_fpn_head.py`` and ``semask_decode_head.py`` compute:

- the segmentation branch: per stage, ``max(1, log2(s_i / 4))`` 3x3 conv + BatchNorm + ReLU
  blocks of ``conv_dims`` (256) channels, each followed by a x2 bilinear upsampling for the stages
  coarser than stride 4; the four maps are summed at stride 4, then Dropout2d(0.1) and a 1x1
  classifier give K logits;
- the semantic branch (training only): the stages' semantic maps summed at stride 4
  (:class:`~semask.modeling.heads.fpn_semantic_decoder.FPNSemanticPriorDecoder`);
- the losses, both mmseg 0.x cross-entropies at the label resolution
  (:func:`~semask.modeling.fpn_losses.upsampled_cross_entropy`): ``loss_sem_seg`` (the release's
  ``loss_ce``, optionally with online hard-pixel mining) and ``loss_cate`` = ``cate_weight`` (0.4)
  x the semantic branch's cross-entropy.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from segcore.config import configurable
from segcore.layers import ShapeSpec
from segcore.modeling import SEM_SEG_HEADS_REGISTRY
from segcore.modeling.meta_arch.semantic_seg import SemSegFPNHead

from ...solver import semask_fpn_param_groups_from_config
from ..backbone.semask_swin import SEMANTIC_MAP_NAME
from ..fpn_losses import upsampled_cross_entropy
from .branch_mask_former_head import BranchMaskFormerHead
from .fpn_semantic_decoder import FPNSemanticPriorDecoder

__all__ = ["BranchFPNHead", "CLASSIFIER_DROPOUT", "CLASSIFIER_INIT_STD"]

#: Dropout2d probability before the 1x1 classifier (mmseg's ``dropout_ratio`` in the released configs).
CLASSIFIER_DROPOUT = 0.1
#: standard deviation of the classifier's normal initialization (mmseg's decode heads; bias 0).
CLASSIFIER_INIT_STD = 0.01


@SEM_SEG_HEADS_REGISTRY.register()
class BranchFPNHead(SemSegFPNHead):
    """The SeMask-FPN head: :class:`SemSegFPNHead`'s scale heads, a dropout and a classifier,
    plus the semantic-prior branch over the backbone's semantic maps.

    Args:
        input_shape: {name: ShapeSpec} of the backbone stages used (``res2`` .. ``res5``, strides
            4 .. 32); the semantic maps ``"{name}_sem_seg"`` of the same stages are read too.
        num_classes: K.
        conv_dims: channels of the scale heads (``MODEL.SEM_SEG_HEAD.CONVS_DIM``; 256).
        common_stride: the stride of the summed maps (``COMMON_STRIDE``; 4, the finest stage's).
        norm: norm of the scale-head convs (``NORM``; "SyncBN" in the release).
        ignore_value: the label excluded from the losses (255).
        loss_weight: multiplier of ``loss_sem_seg`` (``LOSS_WEIGHT``; 1.0).
        cate_weight: multiplier of the semantic branch's loss ``loss_cate``
            (``MODEL.MASK_FORMER.CATE_WEIGHT``; the release's ``cate_w``, 0.4).
        dropout: Dropout2d probability before the classifier (:data:`CLASSIFIER_DROPOUT`).
        ohem_min_kept: with a value, ``loss_sem_seg`` counts only the hardest ``ohem_min_kept``
            labeled pixels per image (the release's ``OHEMPixelSampler``, 100000 for SeMask-L FPN on
            ADE20K); None: every pixel. No config key sets it yet.

    Module names: the scale heads are named after their feature (``res2.0`` conv with its ``norm``,
    ``res3.0``, ``res4.{0,2}``, ``res5.{0,2,4}``: the release's ``scale_heads.{i}.{j}``, odd
    indices being the parameter-free upsamplings), ``predictor`` (the release's ``conv_seg``); the
    dropout and ``sem_head`` have no parameters (``tools/convert-semask-fpn-to-d2.py``).

    ``forward(features, targets=None)``: features {name: (B, C_i, H/s_i, W/s_i)} with the
    semantic maps {name_sem_seg: (B, K, H/s_i, W/s_i)}; targets int64 (B, H, W) at the padded input
    size. Training returns ``(None, {"loss_sem_seg", "loss_cate"})``; eval returns
    ``((B, K, H, W) float logits, {})``, upsampled by ``common_stride``.

    Raises:
        ValueError: (construction) what :class:`SemSegFPNHead` raises, or ``common_stride`` differs
            from the finest stride; (forward) a semantic map is missing (not a SeMask backbone) or
            training without targets.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, conv_dims: int, common_stride: int,
                 norm: Optional[Union[str, Callable]] = None, ignore_value: int = -1, loss_weight: float = 1.0,
                 cate_weight: float = 0.4, dropout: float = CLASSIFIER_DROPOUT, ohem_min_kept: Optional[int] = None):
        super().__init__(input_shape, num_classes=num_classes, conv_dims=conv_dims, common_stride=common_stride,
                         loss_weight=loss_weight, norm=norm, ignore_value=ignore_value)
        strides = [input_shape[name].stride for name in self.in_features]
        if strides[0] != common_stride:
            raise ValueError(f"BranchFPNHead sums the stages at the finest stride {strides[0]}: set "
                             f"MODEL.SEM_SEG_HEAD.COMMON_STRIDE to it (got {common_stride})")
        if ohem_min_kept is not None and ohem_min_kept < 1:
            raise ValueError(f"BranchFPNHead: ohem_min_kept must be None or >= 1, got {ohem_min_kept}")
        self.num_classes = num_classes
        self.cate_weight = cate_weight
        self.ohem_min_kept = ohem_min_kept
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        nn.init.normal_(self.predictor.weight, mean=0.0, std=CLASSIFIER_INIT_STD)
        nn.init.zeros_(self.predictor.bias)
        self.semantic_map_names: List[str] = [f"{name}_{SEMANTIC_MAP_NAME}" for name in self.in_features]
        self.sem_head = FPNSemanticPriorDecoder(feature_strides=strides)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        if "CATE_WEIGHT" not in cfg.MODEL.MASK_FORMER:
            raise KeyError("BranchFPNHead needs MODEL.MASK_FORMER.CATE_WEIGHT: call semask.add_semask_config(cfg) "
                           "first")
        args = super().from_config(cfg, input_shape)
        args["cate_weight"] = cfg.MODEL.MASK_FORMER.CATE_WEIGHT
        min_kept = cfg.MODEL.SEM_SEG_HEAD.get("OHEM_MIN_KEPT", 0)
        if min_kept < 0:
            raise ValueError(f"MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT must be >= 0 (0: no OHEM), got {min_kept}")
        args["ohem_min_kept"] = min_kept or None
        return args

    #: the backbone's semantic maps of ``in_features``, finest first (ValueError when one is missing)
    semantic_stage_maps = BranchMaskFormerHead.semantic_stage_maps

    def forward(self, features: Dict[str, torch.Tensor], targets: Optional[torch.Tensor] = None):
        logits = self.layers(features)
        if self.training:
            prior = self.sem_head(self.semantic_stage_maps(features))
            return None, self.losses(logits, prior, targets)
        return F.interpolate(logits, scale_factor=self.common_stride, mode="bilinear", align_corners=False), {}

    def layers(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The summed scale heads, dropout, classifier: (B, K, H/common_stride, W/common_stride).

        A coarser level whose upsampled size differs from the finest (an input side that is not a
        multiple of the coarsest stride) is resized to it bilinearly first, as the release does.
        """
        x = self.scale_heads[0](features[self.in_features[0]])
        for name, head in zip(self.in_features[1:], self.scale_heads[1:]):
            y = head(features[name])
            if y.shape[-2:] != x.shape[-2:]:
                y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = x + y
        return self.predictor(self.dropout(x))

    def losses(self, logits: torch.Tensor, prior: torch.Tensor,
               targets: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The two losses at the label resolution (mmseg 0.x means over all pixels).

        Args:
            logits: (B, K, h, w) segmentation logits; prior: (B, K, h, w) semantic-branch logits.
            targets: int64 (B, H, W) labels.

        Returns:
            ``{"loss_sem_seg": loss_weight * CE(logits), "loss_cate": cate_weight * CE(prior)}``.

        Raises:
            ValueError: ``targets`` is None.
        """
        if targets is None:
            raise ValueError("BranchFPNHead needs targets in training: pass 'sem_seg' labels")
        return {
            "loss_sem_seg": self.loss_weight * upsampled_cross_entropy(logits, targets, self.ignore_value,
                                                                       self.ohem_min_kept),
            "loss_cate": self.cate_weight * upsampled_cross_entropy(prior, targets, self.ignore_value),
        }

    def model_param_groups(self, cfg, model: nn.Module) -> List[dict]:
        """The optimizer groups of the whole model: :func:`semask.solver.semask_fpn_param_groups_from_config`."""
        return semask_fpn_param_groups_from_config(cfg, model)
