"""SeMask's modules; importing this package registers the ``D2SeMaskSwinTransformer`` backbone
(``BACKBONE_REGISTRY``) and the ``BranchMaskFormerHead`` (``SEM_SEG_HEADS_REGISTRY``)."""
from .backbone import D2SeMaskSwinTransformer, SemanticAttention, SemanticLayer, SeMaskBasicLayer
from .heads import BranchMaskFormerHead, SemanticPriorDecoder
from .semantic_loss import pad_semantic_targets, semantic_prior_loss

__all__ = ["BranchMaskFormerHead", "D2SeMaskSwinTransformer", "SeMaskBasicLayer", "SemanticAttention",
           "SemanticLayer", "SemanticPriorDecoder", "pad_semantic_targets", "semantic_prior_loss"]
