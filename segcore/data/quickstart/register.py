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

from segcore.data.catalog import DatasetCatalog, MetadataCatalog
from segcore.data.datasets.categories import stuff_classes_and_colors
from segcore.data.datasets.sem_seg import load_sem_seg, register_sem_seg_dataset

from .categories import load_quickstart_categories
from .dataset import quickstart_dataset_dir
from .scene import IGNORE_LABEL

__all__ = [
    "QUICKSTART_INSTANCE_SPLITS",
    "QUICKSTART_PANOPTIC_SPLITS",
    "QUICKSTART_SEM_SEG_SPLITS",
    "get_quickstart_panoptic_meta",
    "load_quickstart_instances",
    "load_quickstart_panoptic",
    "register_all_quickstart_panoptic",
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


# name -> (ADE split folder, short split name used in the panoptic / instance file names)
QUICKSTART_PANOPTIC_SPLITS: Dict[str, Tuple[str, str]] = {
    "quickstart_panoptic_train": ("training", "train"),
    "quickstart_panoptic_val": ("validation", "val"),
}
QUICKSTART_INSTANCE_SPLITS: Dict[str, Tuple[str, str]] = {
    "quickstart_instance_train": ("training", "train"),
    "quickstart_instance_val": ("validation", "val"),
}


def get_quickstart_panoptic_meta() -> dict:
    """Panoptic metadata in the ADE20K-panoptic convention: category id = contiguous id;
    ``thing_*`` lists the things, ``stuff_*`` every class."""
    cats = load_quickstart_categories()
    return {
        "thing_classes": [c["name"] for c in cats if c["isthing"]],
        "thing_colors": [list(c["color"]) for c in cats if c["isthing"]],
        "stuff_classes": [c["name"] for c in cats],
        "stuff_colors": [list(c["color"]) for c in cats],
        "thing_dataset_id_to_contiguous_id": {c["id"]: c["id"] for c in cats if c["isthing"]},
        "stuff_dataset_id_to_contiguous_id": {c["id"]: c["id"] for c in cats},
    }


def _panoptic_paths(split: str, short: str, root: Optional[str]) -> Dict[str, str]:
    dataset_dir = quickstart_dataset_dir(_datasets_root() if root is None else root)
    return {
        "image_root": os.path.join(dataset_dir, "images", split),
        "sem_seg_root": os.path.join(dataset_dir, "annotations_detectron2", split),
        "panoptic_root": os.path.join(dataset_dir, f"quickstart_panoptic_{short}"),
        "panoptic_json": os.path.join(dataset_dir, f"quickstart_panoptic_{short}.json"),
        "json_file": os.path.join(dataset_dir, f"quickstart_instance_{short}.json"),
    }


def _require_generated(path: str) -> None:
    if not os.path.exists(path):
        datasets_root = os.path.dirname(os.path.dirname(path))
        raise FileNotFoundError(
            f"quickstart file {path} does not exist; write the dataset with "
            f"`python -m segcore.data.quickstart.generate --root {datasets_root}`")


def load_quickstart_panoptic(split: str, short: str, root: Optional[str] = None) -> List[dict]:
    """Load a split as Detectron2 panoptic dicts (``pan_seg_file_name``, ``segments_info``,
    ``sem_seg_file_name``), resolving the root at call time."""
    from segcore.data.datasets.coco_panoptic import load_panoptic_json

    p = _panoptic_paths(split, short, root)
    _require_generated(p["panoptic_json"])
    return load_panoptic_json(p["panoptic_json"], p["image_root"], p["panoptic_root"], get_quickstart_panoptic_meta(),
                              sem_seg_dir=p["sem_seg_root"], int_image_id=False)


def load_quickstart_instances(name: str, split: str, short: str, root: Optional[str] = None) -> List[dict]:
    """Load a split as Detectron2 instance dicts (COCO format, RLE masks of the things)."""
    from segcore.data.datasets.coco import load_coco_json

    p = _panoptic_paths(split, short, root)
    _require_generated(p["json_file"])
    return load_coco_json(p["json_file"], p["image_root"], name)


def register_all_quickstart_panoptic(root: Optional[str] = None) -> None:
    """Register ``quickstart_panoptic_{train,val}`` (evaluator type ``ade20k_panoptic_seg``: the
    layout is ADE20K's) and ``quickstart_instance_{train,val}`` (``coco``); names already
    registered are left alone."""
    meta = get_quickstart_panoptic_meta()
    for name, (split, short) in QUICKSTART_PANOPTIC_SPLITS.items():
        if name in DatasetCatalog:
            continue
        DatasetCatalog.register(name, functools.partial(load_quickstart_panoptic, split, short, root))
        p = _panoptic_paths(split, short, root)
        MetadataCatalog.get(name).set(evaluator_type="ade20k_panoptic_seg", ignore_label=IGNORE_LABEL,
                                      label_divisor=1000, **p, **meta)
    things = [c for c in load_quickstart_categories() if c["isthing"]]
    for name, (split, short) in QUICKSTART_INSTANCE_SPLITS.items():
        if name in DatasetCatalog:
            continue
        DatasetCatalog.register(name, functools.partial(load_quickstart_instances, name, split, short, root))
        p = _panoptic_paths(split, short, root)
        MetadataCatalog.get(name).set(
            evaluator_type="coco", json_file=p["json_file"], image_root=p["image_root"],
            thing_classes=[c["name"] for c in things], thing_colors=[list(c["color"]) for c in things],
            thing_dataset_id_to_contiguous_id={c["id"]: i for i, c in enumerate(things)})


register_all_quickstart_panoptic()
