"""COCO panoptic segmentation (Detectron2's ``coco_panoptic.py`` and Mask2Former's
``register_coco_panoptic_annos_semseg.py``), and the panoptic-json loader shared with the
ADE20K and Mapillary Vistas panoptic datasets.

Layout under ``$DETECTRON2_DATASETS``::

    coco/
      {train,val}2017/*.jpg
      panoptic_{train,val}2017/*.png                # COCO panoptic PNGs (segment id = R + 256 G + 256^2 B)
      annotations/panoptic_{train,val}2017.json
      annotations/instances_{train,val}2017.json
      panoptic_semseg_{train,val}2017/*.png         # made by datasets/prepare_coco_semantic_annos_from_panoptic_annos.py

Datasets:

* ``coco_2017_{train,val}_panoptic`` (Detectron2 "standard"): contiguous id = position in
  ``coco_panoptic.json`` (things 0..79, stuff 80..132); ``thing_classes`` / ``stuff_classes``
  (and colours) list all 133 categories.
* ``coco_2017_{train,val}_panoptic_with_sem_seg`` (Mask2Former): the same ids;
  ``thing_classes`` / ``thing_colors`` hold the 80 things only and
  ``stuff_dataset_id_to_contiguous_id`` maps all 133 categories; each dict also has
  ``sem_seg_file_name``.

Both: ``evaluator_type="coco_panoptic_seg"``, ``ignore_label=255``, ``label_divisor=1000``,
``panoptic_root``, ``panoptic_json``, ``image_root``, ``json_file`` (the instances json).
"""
from __future__ import annotations

import functools
import json
import logging
import os
from typing import Dict, List, Optional

from segcore.utils.file_io import PathManager

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories, panoptic_metadata
from .paths import join_root, require_dir, require_file

__all__ = [
    "COCO_PANOPTIC_SPLITS",
    "get_coco_panoptic_standard_meta",
    "get_coco_panoptic_with_sem_seg_meta",
    "load_coco_panoptic_json",
    "load_panoptic_json",
    "load_panoptic_split",
    "panoptic_dataset_metadata",
    "register_coco_panoptic",
    "register_all_coco_panoptic",
]

logger = logging.getLogger(__name__)

#: name -> (image folder, panoptic PNG folder, panoptic json, semantic PNG folder, instances json)
COCO_PANOPTIC_SPLITS: Dict[str, tuple] = {
    "coco_2017_train_panoptic": (
        "coco/train2017",
        "coco/panoptic_train2017",
        "coco/annotations/panoptic_train2017.json",
        "coco/panoptic_semseg_train2017",
        "coco/annotations/instances_train2017.json",
    ),
    "coco_2017_val_panoptic": (
        "coco/val2017",
        "coco/panoptic_val2017",
        "coco/annotations/panoptic_val2017.json",
        "coco/panoptic_semseg_val2017",
        "coco/annotations/instances_val2017.json",
    ),
}


def get_coco_panoptic_standard_meta() -> dict:
    """Metadata of Detectron2's ``_get_builtin_metadata("coco_panoptic_standard")``.

    Returns:
        dict: ``thing_classes``, ``thing_colors``, ``stuff_classes``, ``stuff_colors`` (133 each),
        ``thing_dataset_id_to_contiguous_id`` (80 thing ids -> 0..79) and
        ``stuff_dataset_id_to_contiguous_id`` (53 stuff ids -> 80..132).
    """
    return panoptic_metadata(load_categories("coco_panoptic"), thing_classes_are_things_only=False,
                             stuff_ids_cover_things=False)


def get_coco_panoptic_with_sem_seg_meta() -> dict:
    """Metadata of Mask2Former's ``get_metadata()`` for ``coco_2017_*_panoptic_with_sem_seg``.

    Returns:
        dict: ``thing_classes`` / ``thing_colors`` (80 things), ``stuff_classes`` /
        ``stuff_colors`` (all 133), ``thing_dataset_id_to_contiguous_id`` (80 things -> 0..79),
        ``stuff_dataset_id_to_contiguous_id`` (all 133 ids -> 0..132, so the semantic evaluator
        covers things too).
    """
    return panoptic_metadata(load_categories("coco_panoptic"), thing_classes_are_things_only=True,
                             stuff_ids_cover_things=True)


def _convert_segment(segment: dict, meta: dict, json_file: str, file_name: str) -> dict:
    segment = dict(segment)
    cat = segment["category_id"]
    if cat in meta["thing_dataset_id_to_contiguous_id"]:
        segment["category_id"] = meta["thing_dataset_id_to_contiguous_id"][cat]
        segment["isthing"] = True
    elif cat in meta["stuff_dataset_id_to_contiguous_id"]:
        segment["category_id"] = meta["stuff_dataset_id_to_contiguous_id"][cat]
        segment["isthing"] = False
    else:
        raise ValueError(
            f"Segment {segment.get('id')} of '{file_name}' in '{json_file}' has category_id {cat}, "
            "which is not a category of this dataset"
        )
    return segment


def load_panoptic_json(
    json_file: str,
    image_dir: str,
    gt_dir: str,
    meta: dict,
    sem_seg_dir: Optional[str] = None,
    image_ext: str = ".jpg",
    int_image_id: bool = True,
) -> List[dict]:
    """Load a COCO-format panoptic json into Detectron2 dataset dicts.

    As Detectron2's ``load_coco_panoptic_json`` (and Mask2Former's variants): the image of an
    annotation is ``<image_dir>/<stem of its file_name><image_ext>``; segment category ids are
    converted to contiguous ids with ``meta``'s ``thing_dataset_id_to_contiguous_id`` (then
    ``isthing=True``) or ``stuff_dataset_id_to_contiguous_id`` (``isthing=False``).

    Args:
        json_file: the panoptic json ("annotations" with "image_id", "file_name", "segments_info").
        image_dir: folder of the images.
        gt_dir: folder of the panoptic PNGs.
        meta: dict with the two id maps.
        sem_seg_dir: folder of semantic PNGs named like the panoptic ones; adds "sem_seg_file_name".
        image_ext: image extension.
        int_image_id: convert "image_id" to int (COCO); False keeps it as in the json (ADE20K,
            Mapillary Vistas use strings).

    Returns:
        list[dict] with "file_name", "image_id", "pan_seg_file_name", "segments_info" (each
        segment: "id", "category_id" (contiguous), "iscrowd", "area", "bbox", "isthing"), and
        "sem_seg_file_name" when ``sem_seg_dir`` is given.

    Raises:
        FileNotFoundError: the json or a folder is missing, or the first image / PNG is (named).
        ValueError: an empty annotation list, a malformed json, or an unknown category id.
    """
    require_file(json_file, "Panoptic annotation file")
    for folder, what in ((image_dir, "Image"), (gt_dir, "Panoptic PNG"), (sem_seg_dir, "Semantic PNG")):
        if folder is not None:
            require_dir(folder, what)
    with PathManager.open(json_file) as f:
        try:
            json_info = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"Panoptic annotation file '{json_file}' is not valid JSON: {e}") from e
    if "annotations" not in json_info:
        raise ValueError(f"Panoptic annotation file '{json_file}' has no 'annotations' list")

    ret = []
    for ann in json_info["annotations"]:
        image_id = int(ann["image_id"]) if int_image_id else ann["image_id"]
        stem = os.path.splitext(ann["file_name"])[0]
        record = {
            "file_name": os.path.join(image_dir, stem + image_ext),
            "image_id": image_id,
            "pan_seg_file_name": os.path.join(gt_dir, ann["file_name"]),
        }
        if sem_seg_dir is not None:
            record["sem_seg_file_name"] = os.path.join(sem_seg_dir, ann["file_name"])
        record["segments_info"] = [
            _convert_segment(s, meta, json_file, ann["file_name"]) for s in ann["segments_info"]
        ]
        ret.append(record)
    if not ret:
        raise ValueError(f"No annotations in '{json_file}' (images expected in '{image_dir}')")
    for key, what in (("file_name", "Image"), ("pan_seg_file_name", "Panoptic PNG"), ("sem_seg_file_name", "Semantic PNG")):
        if key in ret[0]:
            require_file(ret[0][key], f"{what} of the first annotation in '{json_file}'")
    logger.info("Loaded %d images with panoptic segmentation from %s", len(ret), json_file)
    return ret


def load_coco_panoptic_json(json_file: str, image_dir: str, gt_dir: str, meta: dict) -> List[dict]:
    """Detectron2's ``load_coco_panoptic_json``: :func:`load_panoptic_json` with int image ids and
    ``.jpg`` images (see there for the returned dicts and errors)."""
    return load_panoptic_json(json_file, image_dir, gt_dir, meta)


def register_coco_panoptic(
    name: str, metadata: dict, image_root: str, panoptic_root: str, panoptic_json: str, instances_json: Optional[str] = None
) -> None:
    """Register a "standard" COCO-format panoptic dataset (Detectron2's ``register_coco_panoptic``).

    Metadata: ``panoptic_root``, ``image_root``, ``panoptic_json``, ``json_file``,
    ``evaluator_type="coco_panoptic_seg"``, ``ignore_label=255``, ``label_divisor=1000`` and
    ``metadata`` (which must hold the two id maps).
    """
    DatasetCatalog.register(
        name, functools.partial(load_coco_panoptic_json, panoptic_json, image_root, panoptic_root, metadata)
    )
    MetadataCatalog.get(name).set(
        panoptic_root=panoptic_root,
        image_root=image_root,
        panoptic_json=panoptic_json,
        json_file=instances_json,
        evaluator_type="coco_panoptic_seg",
        ignore_label=255,
        label_divisor=1000,
        **metadata,
    )


def load_panoptic_split(rels: tuple, meta: dict, root: Optional[str], *, with_sem_seg: bool,
                        int_image_id: bool = True) -> List[dict]:
    """:func:`load_panoptic_json` of a builtin split given by its paths relative to the root.

    Args:
        rels: (image folder, panoptic PNG folder, panoptic json, semantic PNG folder, instances json).
        meta: the dataset's metadata (id mappings). root: datasets root (None: ``$DETECTRON2_DATASETS``).
        with_sem_seg: also name each image's semantic PNG. int_image_id: parse image ids as ints.
    """
    image_rel, pan_rel, json_rel, sem_rel, _ = rels
    return load_panoptic_json(join_root(root, json_rel), join_root(root, image_rel), join_root(root, pan_rel), meta,
                              sem_seg_dir=join_root(root, sem_rel) if with_sem_seg else None,
                              int_image_id=int_image_id)


def panoptic_dataset_metadata(root: Optional[str], rels: tuple, evaluator_type: str) -> dict:
    """The file metadata of a COCO-format panoptic split (Detectron2's and Mask2Former's keys).

    Args:
        root: datasets root (None: ``$DETECTRON2_DATASETS`` read when the paths are used).
        rels: (image folder, panoptic PNG folder, panoptic json, semantic PNG folder, instances
            json), relative to the root.
        evaluator_type: the dataset's evaluator type.

    Returns:
        ``panoptic_root``, ``image_root``, ``panoptic_json``, ``json_file`` (instances),
        ``evaluator_type``, ``ignore_label`` (255) and ``label_divisor`` (1000).
    """
    image_rel, pan_rel, json_rel, _sem_rel, ins_rel = rels
    return dict(panoptic_root=join_root(root, pan_rel), image_root=join_root(root, image_rel),
                panoptic_json=join_root(root, json_rel), json_file=join_root(root, ins_rel),
                evaluator_type=evaluator_type, ignore_label=255, label_divisor=1000)


def register_all_coco_panoptic(root: Optional[str] = None) -> None:
    """Register ``coco_2017_{train,val}_panoptic`` and ``coco_2017_{train,val}_panoptic_with_sem_seg``.

    Args:
        root: datasets root; None resolves ``$DETECTRON2_DATASETS`` each time a dataset loads.
    """
    for name, rels in COCO_PANOPTIC_SPLITS.items():
        paths = panoptic_dataset_metadata(root, rels, "coco_panoptic_seg")
        for dataset_name, meta, with_sem_seg in (
            (name, get_coco_panoptic_standard_meta(), False),
            (name + "_with_sem_seg", get_coco_panoptic_with_sem_seg_meta(), True),
        ):
            DatasetCatalog.register(dataset_name, functools.partial(load_panoptic_split, rels, meta, root,
                                                                    with_sem_seg=with_sem_seg))
            extra = {"sem_seg_root": join_root(root, rels[3])} if with_sem_seg else {}
            MetadataCatalog.get(dataset_name).set(**paths, **extra, **meta)
