"""Register the built-in datasets under ``$DETECTRON2_DATASETS`` (default ``./datasets``) on import.

As in Detectron2's ``detectron2/data/datasets/builtin.py``; loading is lazy, so a dataset whose
files are absent only fails when it is used.
"""
from __future__ import annotations

import os
from typing import Optional

from .ade20k import register_all_ade20k
from .ade20k_full import register_all_ade20k_full
from .ade20k_panoptic import register_all_ade20k_instance, register_all_ade20k_panoptic
from .cityscapes import register_all_cityscapes
from .cityscapes_panoptic import register_all_cityscapes_panoptic
from .coco import register_all_coco_instances
from .coco_panoptic import register_all_coco_panoptic
from .coco_stuff import register_all_coco_stuff_10k
from .mapillary_vistas import register_all_mapillary_vistas, register_all_mapillary_vistas_panoptic
from .quickstart import register_all_quickstart, register_all_quickstart_panoptic, register_all_quickstart_ytvis
from .ytvis import register_all_ytvis

__all__ = ["register_all_builtin", "get_datasets_root"]


def get_datasets_root() -> str:
    """The datasets folder: ``$DETECTRON2_DATASETS`` or ``datasets`` (relative to the working directory)."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def register_all_builtin(root: Optional[str] = None) -> None:
    """Register every built-in dataset with its files under ``root``.

    Args:
        root: the datasets folder; None (the default used on import) makes the loaders read
            ``$DETECTRON2_DATASETS`` each time a dataset is loaded (ADE20K-150 semantic binds
            the folder seen now). The quickstart datasets (written by ``segcore.quickstart``)
            are registered too, and the YouTube-VIS / OVIS videos (:mod:`.ytvis`).
    """
    register_all_ade20k(get_datasets_root() if root is None else root)
    register_all_ade20k_panoptic(root)
    register_all_ade20k_instance(root)
    register_all_ade20k_full(root)
    register_all_coco_instances(root)
    register_all_coco_panoptic(root)
    register_all_coco_stuff_10k(root)
    register_all_cityscapes(root)
    register_all_cityscapes_panoptic(root)
    register_all_mapillary_vistas(root)
    register_all_mapillary_vistas_panoptic(root)
    register_all_ytvis(root)
    register_all_quickstart(root)
    register_all_quickstart_panoptic(root)
    register_all_quickstart_ytvis(root)


if __name__.endswith(".builtin"):
    # importing this module (through ``import segcore.data``) registers the datasets
    register_all_builtin()
