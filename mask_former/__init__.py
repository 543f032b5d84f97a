"""MaskFormer (Cheng et al., NeurIPS 2021): mask classification for semantic segmentation.

Importing this package registers its components: the ``MaskFormer`` meta-architecture, the
``MaskFormerHead``, ``BasePixelDecoder`` and ``TransformerEncoderPixelDecoder`` heads, the
``D2SwinTransformer`` backbone, and the ``mask_former_*`` dataset mappers.
"""
from . import data  # noqa: F401  (registers dataset mappers)
from . import modeling  # noqa: F401  (registers heads)
from .config import add_mask_former_config, add_swin_config
from .inference import instance_inference, panoptic_inference, semantic_inference
from .mask_former_model import MaskFormer
from .solver import get_mask_former_param_groups

__all__ = ["MaskFormer", "add_mask_former_config", "add_swin_config", "get_mask_former_param_groups",
           "instance_inference", "panoptic_inference", "semantic_inference"]
