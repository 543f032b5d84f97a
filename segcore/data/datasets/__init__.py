"""Dataset loaders and the registration of built-in datasets (importing this registers them)."""
from . import builtin as _builtin  # noqa: F401  (registers the built-in datasets)
from .ade20k import register_all_ade20k
from .coco import load_coco_json, register_coco_instances
from .coco_panoptic import load_coco_panoptic_json, load_panoptic_json, register_coco_panoptic
from .cityscapes import load_cityscapes_instances, load_cityscapes_semantic
from .cityscapes_panoptic import load_cityscapes_panoptic
from .panoptic_ids import IdGenerator, id2rgb, rgb2id
from .categories import available_category_tables, load_categories, stuff_classes_and_colors
from .sem_seg import load_sem_seg, register_sem_seg_dataset
from .ytvis import load_ytvis_json, register_ytvis_instances

__all__ = [
    "IdGenerator",
    "available_category_tables",
    "id2rgb",
    "load_cityscapes_instances",
    "load_cityscapes_panoptic",
    "load_cityscapes_semantic",
    "load_coco_json",
    "load_coco_panoptic_json",
    "load_panoptic_json",
    "register_coco_instances",
    "register_coco_panoptic",
    "rgb2id",
    "load_categories",
    "load_sem_seg",
    "load_ytvis_json",
    "register_all_ade20k",
    "register_sem_seg_dataset",
    "register_ytvis_instances",
    "stuff_classes_and_colors",
]
