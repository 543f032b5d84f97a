"""SeMask (Jain et al., "SeMask: Semantically Masked Transformers for Semantic Segmentation", 2021),
built on :mod:`mask_former` and :mod:`mask2former`.

Importing this package registers its components: the ``SeMaskMaskFormer`` meta-architecture, the
``D2SeMaskSwinTransformer`` backbone and the ``BranchMaskFormerHead`` (the original names). Which
pixel decoder, transformer decoder and criterion a SeMask model uses follows its config as for
MaskFormer and Mask2Former. SeMask-FPN is a ``SemanticSegmentor`` with the ``SeMaskSwinTransformer``
backbone and the ``BranchFPNHead`` (the names of the mmsegmentation release).
"""
import mask2former  # noqa: F401  (SeMask-Mask2Former configs name Mask2Former's decoders)

from . import modeling  # noqa: F401  (registers the backbone and the head)
from .config import add_semask_config
from .semask_mask_former_model import SeMaskMaskFormer

__all__ = ["SeMaskMaskFormer", "add_semask_config"]
