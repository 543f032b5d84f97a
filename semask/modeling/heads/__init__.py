"""SeMask's head: MaskFormer's head with the semantic decoder (registers ``BranchMaskFormerHead``)."""
from .branch_mask_former_head import BranchMaskFormerHead
from .semantic_decoder import SemanticPriorDecoder

__all__ = ["BranchMaskFormerHead", "SemanticPriorDecoder"]
