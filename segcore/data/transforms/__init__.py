"""Transforms and augmentations (Detectron2's ``detectron2.data.transforms``, usually imported as ``T``)."""
from .augmentation import (
    AugInput,
    Augmentation,
    AugmentationList,
    StandardAugInput,
    TransformGen,
    apply_augmentations,
    apply_transform_gens,
)
from .augmentation_impl import (
    FixedSizeCrop,
    RandomApply,
    RandomCrop,
    RandomCrop_CategoryAreaConstraint,
    RandomFlip,
    Resize,
    ResizeScale,
    ResizeShortestEdge,
)
from .color_augmentation import ColorAugSSDTransform
from .transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    ResizeTransform,
    Transform,
    TransformList,
    VFlipTransform,
)

__all__ = [k for k in globals().keys() if not k.startswith("_")]
