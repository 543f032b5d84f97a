"""SeMask's modules; importing this package registers the ``D2SeMaskSwinTransformer`` and
``SeMaskSwinTransformer`` (SeMask-FPN's) backbones (``BACKBONE_REGISTRY``) and the
``BranchMaskFormerHead`` and ``BranchFPNHead`` (SeMask-FPN's) heads (``SEM_SEG_HEADS_REGISTRY``)."""
from .backbone import D2SeMaskSwinTransformer, SemanticAttention, SemanticLayer, SeMaskBasicLayer
from .backbone.semask_fpn_swin import SeMaskSwinTransformer, fpn_semantic_window_stages
from .heads import BranchMaskFormerHead, SemanticPriorDecoder
from .heads.branch_fpn_head import BranchFPNHead
from .heads.fpn_semantic_decoder import FPNSemanticPriorDecoder
from .semantic_loss import pad_semantic_targets, semantic_prior_loss

__all__ = ["BranchFPNHead", "BranchMaskFormerHead", "D2SeMaskSwinTransformer", "FPNSemanticPriorDecoder",
           "SeMaskBasicLayer", "SeMaskSwinTransformer", "SemanticAttention", "SemanticLayer", "SemanticPriorDecoder",
           "fpn_semantic_window_stages", "pad_semantic_targets", "semantic_prior_loss"]
