"""Registers the quickstart semantic-segmentation datasets.

=============================  =============================================================
name                           files (under ``$DETECTRON2_DATASETS``, default ``./datasets``)
=============================  =============================================================
``quickstart_sem_seg_train``   ``quickstart_ade/images/training``, ``.../annotations_detectron2/training``
``quickstart_sem_seg_val``     ``quickstart_ade/images/validation``, ``.../annotations_detectron2/validation``
=============================  =============================================================

Unlike Detectron2's builtin datasets, the root is read from ``$DETECTRON2_DATASETS`` when a
dataset is *loaded* (``DatasetCatalog.get``), not when this module is imported, so the variable
may be set after ``import segcore.data.quickstart``. The metadata's ``image_root`` /
``sem_seg_root`` record the root seen at registration.
"""
from __future__ import annotations

import functools
import os
from typing import Dict, List, Optional, Tuple

from segcore.data.catalog import DatasetCatalog
from segcore.data.datasets.categories import stuff_classes_and_colors
from segcore.data.datasets.sem_seg import load_sem_seg, register_sem_seg_dataset

from .categories import load_quickstart_categories
from .dataset import quickstart_dataset_dir
from .scene import IGNORE_LABEL

__all__ = [
    "QUICKSTART_SEM_SEG_SPLITS",
    "quickstart_sem_seg_roots",
    "load_quickstart_sem_seg",
    "register_all_quickstart",
]

# dataset name -> ADE20K split folder
QUICKSTART_SEM_SEG_SPLITS: Dict[str, str] = {
    "quickstart_sem_seg_train": "training",
    "quickstart_sem_seg_val": "validation",
}


def _datasets_root() -> str:
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def quickstart_sem_seg_roots(split: str, root: Optional[str] = None) -> Tuple[str, str]:
    """(image_root, gt_root) of a split.

    Args:
        split: "training" or "validation".
        root: datasets root; ``None`` reads ``$DETECTRON2_DATASETS`` (default ``datasets``) now.
    """
    dataset_dir = quickstart_dataset_dir(_datasets_root() if root is None else root)
    return (
        os.path.join(dataset_dir, "images", split),
        os.path.join(dataset_dir, "annotations_detectron2", split),
    )


def load_quickstart_sem_seg(split: str, root: Optional[str] = None) -> List[dict]:
    """Load a split as Detectron2 semantic-segmentation dicts (``file_name``,
    ``sem_seg_file_name``), resolving the root at call time.

    Raises:
        FileNotFoundError: if the split's folders do not exist (the message gives the command
            that writes them).
    """
    image_root, gt_root = quickstart_sem_seg_roots(split, root)
    for folder in (image_root, gt_root):
        if not os.path.isdir(folder):
            datasets_root = os.path.dirname(os.path.dirname(os.path.dirname(folder)))
            raise FileNotFoundError(
                f"quickstart dataset folder {folder} does not exist; write it with "
                f"`python -m segcore.data.quickstart.generate --root {datasets_root}` "
                "(or set DETECTRON2_DATASETS to the root that holds quickstart_ade/)"
            )
    return load_sem_seg(gt_root, image_root, gt_ext="png", image_ext="jpg")


def register_all_quickstart(root: Optional[str] = None) -> None:
    """Register ``quickstart_sem_seg_train`` and ``quickstart_sem_seg_val`` (names already
    registered are left alone).

    Args:
        root: datasets root to bind now; ``None`` (the default used on import) makes the
            loaders read ``$DETECTRON2_DATASETS`` each time they run.
    """
    stuff_classes, stuff_colors = stuff_classes_and_colors(load_quickstart_categories())
    for name, split in QUICKSTART_SEM_SEG_SPLITS.items():
        if name in DatasetCatalog:
            continue
        image_root, gt_root = quickstart_sem_seg_roots(split, root)
        register_sem_seg_dataset(
            name,
            image_root,
            gt_root,
            stuff_classes,
            stuff_colors,
            ignore_label=IGNORE_LABEL,
            evaluator_type="sem_seg",
            image_ext="jpg",
            gt_ext="png",
        )
        # replace the loader bound to today's paths by one that resolves the root when called
        DatasetCatalog.remove(name)
        DatasetCatalog.register(name, functools.partial(load_quickstart_sem_seg, split, root))


register_all_quickstart()
