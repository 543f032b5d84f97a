"""Layers shared by all model families."""
from .batch_norm import FrozenBatchNorm2d, GroupNorm, NaiveSyncBatchNorm, get_norm
from .fused_attention import set_fused_attention
from .padding import ceil_to_multiple
from .point_features import calculate_uncertainty, get_uncertain_point_coords_with_randomness, point_sample
from .shape_spec import ShapeSpec
from .weight_init import c2_msra_fill, c2_xavier_fill
from .wrappers import Conv2d, cat

__all__ = ["Conv2d", "FrozenBatchNorm2d", "GroupNorm", "NaiveSyncBatchNorm", "ShapeSpec", "c2_msra_fill",
           "c2_xavier_fill", "calculate_uncertainty", "cat", "ceil_to_multiple", "get_norm",
           "get_uncertain_point_coords_with_randomness", "point_sample", "set_fused_attention"]
