"""Video data: the clip mapper (``"ytvis"`` in :data:`segcore.data.DATASET_MAPPER_REGISTRY`) and the
clip augmentations. The YouTube-VIS / OVIS datasets themselves are registered by
:mod:`segcore.data.datasets.ytvis` (``import segcore.data``)."""
from .augmentation_impl import RandomBrightness, RandomContrast, RandomRotation, RandomSaturation, RotationTransform
from .clip_augmentation import FRAME_AUGMENTATIONS, ClipAugmentations, build_clip_augmentations
from .ytvis_dataset_mapper import YTVISDatasetMapper, sample_clip_frames

__all__ = ["FRAME_AUGMENTATIONS", "ClipAugmentations", "RandomBrightness", "RandomContrast", "RandomRotation",
           "RandomSaturation", "RotationTransform", "YTVISDatasetMapper", "build_clip_augmentations",
           "sample_clip_frames"]
