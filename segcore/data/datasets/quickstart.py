"""The quickstart datasets: what the generator :mod:`segcore.quickstart` writes, registered for reading.

=================================  ============================================================
name                               files (under ``$DETECTRON2_DATASETS``, default ``./datasets``)
=================================  ============================================================
``quickstart_sem_seg_{train,val}``  ``quickstart_ade/images/<split>``, ``quickstart_ade/annotations_detectron2/<split>``
                                   (the ADE20K semantic layout)
``quickstart_panoptic_{train,val}`` ``quickstart_ade/quickstart_panoptic_{train,val}{/,.json}`` (COCO panoptic)
``quickstart_instance_{train,val}`` ``quickstart_ade/quickstart_instance_{train,val}.json`` (COCO instances)
``quickstart_ytvis_{train,val}``    ``quickstart_ytvis/{train,valid}.json``, ``quickstart_ytvis/{train,valid}/JPEGImages``
                                   (videos, the YouTube-VIS layout)
=================================  ============================================================

Reading them needs only the standard readers of these formats and the category table
``segcore/data/categories/quickstart.json`` (:func:`load_quickstart_categories`, which the
generator uses too), so registering them imports nothing of the generator (nor its scikit-image
and matplotlib). Write the files with ``python -m segcore.quickstart.generate --root datasets``.

Unlike most built-in datasets, the loaders read ``$DETECTRON2_DATASETS`` when a dataset is
*loaded* (``DatasetCatalog.get``), so the variable may be set after ``import segcore.data``; the
metadata's paths record the root seen at registration.
"""
from __future__ import annotations

import functools
import os
from typing import Dict, List, Optional, Tuple

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories, panoptic_metadata, stuff_classes_and_colors
from .coco import load_coco_json
from .coco_panoptic import load_panoptic_json
from .paths import datasets_root
from .sem_seg import load_sem_seg, register_sem_seg_dataset
from .ytvis import load_ytvis_json

__all__ = [
    "DATASET_DIRNAME",
    "VIDEO_DATASET_DIRNAME",
    "GENERATE_COMMAND",
    "IGNORE_LABEL",
    "QUICKSTART_INSTANCE_SPLITS",
    "QUICKSTART_PANOPTIC_SPLITS",
    "QUICKSTART_SEM_SEG_SPLITS",
    "QUICKSTART_TABLE",
    "QUICKSTART_YTVIS_SPLITS",
    "get_quickstart_panoptic_meta",
    "get_quickstart_ytvis_meta",
    "load_quickstart_categories",
    "load_quickstart_instances",
    "load_quickstart_panoptic",
    "load_quickstart_sem_seg",
    "load_quickstart_ytvis",
    "quickstart_dataset_dir",
    "quickstart_sem_seg_roots",
    "quickstart_video_dataset_dir",
    "quickstart_ytvis_paths",
    "register_all_quickstart",
    "register_all_quickstart_panoptic",
    "register_all_quickstart_ytvis",
    "register_quickstart_datasets",
]

#: the category table, ``segcore/data/categories/quickstart.json``
QUICKSTART_TABLE = "quickstart"
#: the dataset folder under a datasets root
DATASET_DIRNAME = "quickstart_ade"
#: the video dataset folder under a datasets root
VIDEO_DATASET_DIRNAME = "quickstart_ytvis"
#: label-map value of unlabelled pixels, as in Detectron2's ADE20K loader
IGNORE_LABEL = 255
#: the command that writes the files (named by the errors of the loaders)
GENERATE_COMMAND = "python -m segcore.quickstart.generate"

_REQUIRED_KEYS = ("color", "id", "isthing", "name")

#: dataset name -> ADE20K split folder
QUICKSTART_SEM_SEG_SPLITS: Dict[str, str] = {
    "quickstart_sem_seg_train": "training",
    "quickstart_sem_seg_val": "validation",
}
#: dataset name -> (ADE20K split folder, short split name used in the panoptic / instance file names)
QUICKSTART_PANOPTIC_SPLITS: Dict[str, Tuple[str, str]] = {
    "quickstart_panoptic_train": ("training", "train"),
    "quickstart_panoptic_val": ("validation", "val"),
}
QUICKSTART_INSTANCE_SPLITS: Dict[str, Tuple[str, str]] = {
    "quickstart_instance_train": ("training", "train"),
    "quickstart_instance_val": ("validation", "val"),
}
#: dataset name -> the YouTube-VIS split folder (``train`` / ``valid``, as ``ytvis_2019/``)
QUICKSTART_YTVIS_SPLITS: Dict[str, str] = {
    "quickstart_ytvis_train": "train",
    "quickstart_ytvis_val": "valid",
}


def load_quickstart_categories() -> List[dict]:
    """The quickstart categories, in label order, checked for use as label-map values.

    Each entry is ``{"color": [r, g, b], "id": i, "isthing": 0/1, "name": str}`` (the shape of
    ``ade20k_150.json``); ``id`` is the value written into the label maps, so ids must be
    ``0..K-1`` in file order.

    Returns:
        a new list of new dicts (callers may modify them).

    Raises:
        ValueError: an entry lacks a key, has a bad colour / isthing, ids are not contiguous,
            names repeat, or there are 255 or more classes (255 is the ignore label).
    """
    where = f"segcore/data/categories/{QUICKSTART_TABLE}.json"
    table = load_categories(QUICKSTART_TABLE)
    for index, entry in enumerate(table):
        missing = [k for k in _REQUIRED_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where}: entry {index} lacks the key(s) {missing}")
        if entry["id"] != index:
            raise ValueError(
                f"{where}: entry {index} ({entry['name']!r}) has id {entry['id']}; ids must be the "
                "contiguous indices 0..K-1 in file order (they are the label-map values)"
            )
        color = entry["color"]
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise ValueError(f"{where}: entry {index} ({entry['name']!r}) has a bad color {color}")
        if entry["isthing"] not in (0, 1):
            raise ValueError(f"{where}: entry {index} ({entry['name']!r}) has isthing={entry['isthing']}")
    if len(table) >= IGNORE_LABEL:
        raise ValueError(f"{where}: {len(table)} categories do not fit below the ignore label {IGNORE_LABEL}")
    names = [entry["name"] for entry in table]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: category names are not unique: {names}")
    return table


def quickstart_dataset_dir(root: str) -> str:
    """``<root>/quickstart_ade``: the dataset folder under a datasets root."""
    return os.path.join(os.path.expanduser(root), DATASET_DIRNAME)


def _dataset_dir(root: Optional[str]) -> str:
    return quickstart_dataset_dir(datasets_root() if root is None else root)


def quickstart_sem_seg_roots(split: str, root: Optional[str] = None) -> Tuple[str, str]:
    """(image_root, gt_root) of a split.

    Args:
        split: "training" or "validation".
        root: datasets root; ``None`` reads ``$DETECTRON2_DATASETS`` (default ``datasets``) now.
    """
    dataset_dir = _dataset_dir(root)
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
            root_dir = os.path.dirname(os.path.dirname(os.path.dirname(folder)))
            raise FileNotFoundError(
                f"quickstart dataset folder {folder} does not exist; write it with "
                f"`{GENERATE_COMMAND} --root {root_dir}` "
                f"(or set DETECTRON2_DATASETS to the root that holds {DATASET_DIRNAME}/)"
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


def get_quickstart_panoptic_meta() -> dict:
    """Panoptic metadata in the ADE20K-panoptic convention: category id = contiguous id;
    ``thing_*`` lists the things, ``stuff_*`` every class."""
    return panoptic_metadata(load_quickstart_categories(), thing_classes_are_things_only=True,
                             stuff_ids_cover_things=True)


def _panoptic_paths(split: str, short: str, root: Optional[str]) -> Dict[str, str]:
    dataset_dir = _dataset_dir(root)
    return {
        "image_root": os.path.join(dataset_dir, "images", split),
        "sem_seg_root": os.path.join(dataset_dir, "annotations_detectron2", split),
        "panoptic_root": os.path.join(dataset_dir, f"quickstart_panoptic_{short}"),
        "panoptic_json": os.path.join(dataset_dir, f"quickstart_panoptic_{short}.json"),
        "json_file": os.path.join(dataset_dir, f"quickstart_instance_{short}.json"),
    }


def _require_generated(path: str) -> None:
    if not os.path.exists(path):
        root_dir = os.path.dirname(os.path.dirname(path))
        raise FileNotFoundError(
            f"quickstart file {path} does not exist; write the dataset with `{GENERATE_COMMAND} --root {root_dir}`")


def load_quickstart_panoptic(split: str, short: str, root: Optional[str] = None) -> List[dict]:
    """Load a split as Detectron2 panoptic dicts (``pan_seg_file_name``, ``segments_info``,
    ``sem_seg_file_name``), resolving the root at call time."""
    p = _panoptic_paths(split, short, root)
    _require_generated(p["panoptic_json"])
    return load_panoptic_json(p["panoptic_json"], p["image_root"], p["panoptic_root"], get_quickstart_panoptic_meta(),
                              sem_seg_dir=p["sem_seg_root"], int_image_id=False)


def load_quickstart_instances(name: str, split: str, short: str, root: Optional[str] = None) -> List[dict]:
    """Load a split as Detectron2 instance dicts (COCO format, RLE masks of the things)."""
    p = _panoptic_paths(split, short, root)
    _require_generated(p["json_file"])
    return load_coco_json(p["json_file"], p["image_root"], name)


def register_all_quickstart_panoptic(root: Optional[str] = None) -> None:
    """Register ``quickstart_panoptic_{train,val}`` (evaluator type ``ade20k_panoptic_seg``: the
    layout is ADE20K's) and ``quickstart_instance_{train,val}`` (``coco``); names already
    registered are left alone.

    Args:
        root: as for :func:`register_all_quickstart`.
    """
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


def quickstart_video_dataset_dir(root: str) -> str:
    """``<root>/quickstart_ytvis``: the video dataset folder under a datasets root."""
    return os.path.join(os.path.expanduser(root), VIDEO_DATASET_DIRNAME)


def quickstart_ytvis_paths(split: str, root: Optional[str] = None) -> Tuple[str, str]:
    """(image_root, json_file) of a video split ("train" or "valid"), in the YouTube-VIS layout
    (``<root>/quickstart_ytvis/<split>/JPEGImages``, ``<root>/quickstart_ytvis/<split>.json``);
    ``root=None`` reads ``$DETECTRON2_DATASETS`` now."""
    dataset_dir = quickstart_video_dataset_dir(datasets_root() if root is None else root)
    return os.path.join(dataset_dir, split, "JPEGImages"), os.path.join(dataset_dir, f"{split}.json")


def get_quickstart_ytvis_meta() -> dict:
    """Metadata of the video set: its classes are the quickstart things, with YouTube-VIS-style
    category ids 1..K in table order (``thing_dataset_id_to_contiguous_id`` {1: 0, ...})."""
    things = [c for c in load_quickstart_categories() if c["isthing"]]
    return {"thing_classes": [c["name"] for c in things], "thing_colors": [list(c["color"]) for c in things],
            "thing_dataset_id_to_contiguous_id": {i + 1: i for i in range(len(things))}}


def load_quickstart_ytvis(split: str, root: Optional[str] = None) -> List[dict]:
    """Load a video split as YouTube-VIS video records (:func:`~segcore.data.datasets.ytvis.load_ytvis_json`),
    resolving the root at call time. The metadata is the one set at registration (the json's
    categories are the quickstart things, ids 1..K): loading does not rewrite it.

    Raises:
        FileNotFoundError: the split was not written (the message gives the command that writes it).
    """
    image_root, json_file = quickstart_ytvis_paths(split, root)
    if not os.path.exists(json_file):
        raise FileNotFoundError(
            f"quickstart video file {json_file} does not exist; write the video set with "
            f"`{GENERATE_COMMAND} --videos --root {os.path.dirname(os.path.dirname(json_file))}`")
    return load_ytvis_json(json_file, image_root)


def register_all_quickstart_ytvis(root: Optional[str] = None) -> None:
    """Register ``quickstart_ytvis_train`` and ``quickstart_ytvis_val`` (evaluator type ``ytvis``;
    names already registered are left alone).

    Args:
        root: as for :func:`register_all_quickstart`.
    """
    meta = get_quickstart_ytvis_meta()
    for name, split in QUICKSTART_YTVIS_SPLITS.items():
        if name in DatasetCatalog:
            continue
        DatasetCatalog.register(name, functools.partial(load_quickstart_ytvis, split, root))
        image_root, json_file = quickstart_ytvis_paths(split, root)
        MetadataCatalog.get(name).set(evaluator_type="ytvis", json_file=json_file, image_root=image_root, **meta)


def register_quickstart_datasets(root: Optional[str]) -> None:
    """Register every quickstart dataset (semantic, panoptic, instance, video) under ``root``,
    replacing the registrations made on import.

    The registrations made on import bind the metadata paths (``json_file``, ``panoptic_json``,
    ...) that the evaluators read to the root seen then; a caller that chooses the root later (the
    quickstart with ``--datasets-root``) calls this so that evaluation reads the same files as
    training.

    Args:
        root: the datasets root that holds ``quickstart_ade/`` and ``quickstart_ytvis/``; None
            registers as on import (loaders read ``$DETECTRON2_DATASETS`` when they run).
    """
    names = [*QUICKSTART_SEM_SEG_SPLITS, *QUICKSTART_PANOPTIC_SPLITS, *QUICKSTART_INSTANCE_SPLITS,
             *QUICKSTART_YTVIS_SPLITS]
    for name in names:
        if name in DatasetCatalog:
            DatasetCatalog.remove(name)
        if name in MetadataCatalog:
            MetadataCatalog.remove(name)
    register_all_quickstart(root)
    register_all_quickstart_panoptic(root)
    register_all_quickstart_ytvis(root)
