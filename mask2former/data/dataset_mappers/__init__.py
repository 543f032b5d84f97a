"""Mask2Former dataset mappers, registered in ``segcore.data.DATASET_MAPPER_REGISTRY`` on import:
``coco_instance_lsj`` and ``coco_panoptic_lsj`` (large-scale jitter)."""
from .coco_instance_lsj_dataset_mapper import COCOInstanceLSJDatasetMapper
from .coco_panoptic_lsj_dataset_mapper import COCOPanopticLSJDatasetMapper
from .lsj import LSJMapperBase, build_lsj_augmentation, lsj_padding_mask

__all__ = [
    "COCOInstanceLSJDatasetMapper",
    "COCOPanopticLSJDatasetMapper",
    "LSJMapperBase",
    "build_lsj_augmentation",
    "lsj_padding_mask",
]
