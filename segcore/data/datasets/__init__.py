"""Dataset loaders and the registration of built-in datasets (importing this registers them)."""
from . import builtin as _builtin  # noqa: F401  (registers ade20k_sem_seg_{train,val})
from .ade20k import register_all_ade20k
from .categories import available_category_tables, load_categories, stuff_classes_and_colors
from .sem_seg import load_sem_seg, register_sem_seg_dataset

__all__ = [
    "available_category_tables",
    "load_categories",
    "load_sem_seg",
    "register_all_ade20k",
    "register_sem_seg_dataset",
    "stuff_classes_and_colors",
]
