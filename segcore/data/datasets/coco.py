"""COCO instance segmentation: ``load_coco_json``, ``register_coco_instances`` and the
built-in ``coco_2017_train`` / ``coco_2017_val`` (as in Detectron2's ``data/datasets/coco.py``
and ``builtin.py``).

Layout under ``$DETECTRON2_DATASETS``::

    coco/
      train2017/*.jpg  val2017/*.jpg
      annotations/instances_{train,val}2017.json

Metadata (as Detectron2's ``_get_coco_instances_meta``): ``thing_classes`` / ``thing_colors``
(the 80 things of ``coco_instance.json``), ``thing_dataset_id_to_contiguous_id`` (COCO ids
1..90 -> 0..79), ``json_file``, ``image_root``, ``evaluator_type="coco"``.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from typing import Dict, List, Optional, Sequence

from segcore.structures.boxes import BoxMode
from segcore.utils.file_io import PathManager

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories
from .paths import join_root, require_dir, require_file

__all__ = [
    "COCO_INSTANCE_SPLITS",
    "get_coco_instances_meta",
    "load_coco_json",
    "register_coco_instances",
    "register_all_coco_instances",
]

logger = logging.getLogger(__name__)

#: dataset name -> (image folder, instances json), relative to the datasets root
COCO_INSTANCE_SPLITS: Dict[str, tuple] = {
    "coco_2017_train": ("coco/train2017", "coco/annotations/instances_train2017.json"),
    "coco_2017_val": ("coco/val2017", "coco/annotations/instances_val2017.json"),
}


def get_coco_instances_meta() -> dict:
    """Metadata of the 80 COCO things (Detectron2's ``_get_coco_instances_meta``).

    Returns:
        dict with ``thing_dataset_id_to_contiguous_id`` ({coco id: 0..79}), ``thing_classes``
        (80 names) and ``thing_colors`` (80 [r, g, b]).
    """
    cats = [c for c in load_categories("coco_instance") if c["isthing"] == 1]
    if len(cats) != 80:
        raise ValueError(f"coco_instance.json must hold 80 things, found {len(cats)}")
    return {
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
        "thing_classes": [c["name"] for c in cats],
        "thing_colors": [list(c["color"]) for c in cats],
    }


def _valid_segmentation(segm, json_file: str, ann_id):
    """Polygons with at least 3 points (as Detectron2), or an RLE dict (compressed when given raw)."""
    import pycocotools.mask as mask_util

    if isinstance(segm, dict):
        if isinstance(segm.get("counts"), list):  # uncompressed RLE
            segm = mask_util.frPyObjects(segm, *segm["size"])
        return segm
    if not isinstance(segm, list):
        raise ValueError(f"Annotation {ann_id} in '{json_file}': 'segmentation' must be a list of polygons or an RLE dict")
    polygons = [p for p in segm if len(p) % 2 == 0 and len(p) >= 6]
    return polygons or None


def load_coco_json(
    json_file: str,
    image_root: str,
    dataset_name: Optional[str] = None,
    extra_annotation_keys: Optional[Sequence[str]] = None,
) -> List[dict]:
    """Load a COCO instances json (with pycocotools) into Detectron2 dataset dicts.

    As Detectron2's ``load_coco_json``: category ids are mapped to contiguous ids
    ``{id: i for i, id in enumerate(sorted(json category ids))}``; with ``dataset_name`` the
    dataset's metadata gets ``thing_classes`` and ``thing_dataset_id_to_contiguous_id`` from the
    json. Polygons with fewer than 3 points are dropped and an instance left without a valid
    polygon is skipped (logged); RLE segmentations are kept (uncompressed ones compressed).

    Args:
        json_file: path of the COCO instances json.
        image_root: folder of the images named by the json's ``file_name``.
        dataset_name: a registered name whose metadata is filled in, or None.
        extra_annotation_keys: annotation keys copied besides iscrowd, bbox, keypoints, category_id.

    Returns:
        list[dict], one per image, with "file_name", "height", "width", "image_id" and
        "annotations": list of {"iscrowd", "bbox" (x, y, w, h pixels), "bbox_mode"
        (BoxMode.XYWH_ABS), "category_id" (contiguous), "segmentation" (polygons or RLE)}.

    Raises:
        FileNotFoundError: the json or the image folder is missing (named).
        ValueError: an annotation whose image_id differs from its image, or with "ignore" set.
    """
    from pycocotools.coco import COCO

    require_file(json_file, "COCO annotation file")
    require_dir(image_root, "COCO image")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_api = COCO(PathManager.get_local_path(json_file))

    cat_ids = sorted(coco_api.getCatIds())
    id_map = {v: i for i, v in enumerate(cat_ids)}
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        meta.thing_classes = [c["name"] for c in coco_api.loadCats(cat_ids)]
        meta.thing_dataset_id_to_contiguous_id = id_map

    img_ids = sorted(coco_api.imgs.keys())
    ann_keys = ["iscrowd", "bbox", "keypoints", "category_id"] + list(extra_annotation_keys or [])
    dataset_dicts, num_without_segm = [], 0
    for img_id in img_ids:
        img = coco_api.imgs[img_id]
        record = {
            "file_name": os.path.join(image_root, img["file_name"]),
            "height": img["height"],
            "width": img["width"],
            "image_id": img_id,
        }
        objs = []
        for ann in coco_api.imgToAnns.get(img_id, []):
            if ann["image_id"] != img_id:
                raise ValueError(f"Annotation {ann.get('id')} in '{json_file}' has image_id {ann['image_id']} != {img_id}")
            if ann.get("ignore", 0) != 0:
                raise ValueError(f"Annotation {ann.get('id')} in '{json_file}': 'ignore' annotations are not supported")
            obj = {key: ann[key] for key in ann_keys if key in ann}
            if "bbox" in obj and len(obj["bbox"]) == 0:
                raise ValueError(f"Annotation {ann.get('id')} in '{json_file}' has an empty bbox")
            segm = ann.get("segmentation", None)
            if segm is not None:
                segm = _valid_segmentation(segm, json_file, ann.get("id"))
                if segm is None:
                    num_without_segm += 1
                    continue
                obj["segmentation"] = segm
            obj["bbox_mode"] = BoxMode.XYWH_ABS
            if ann["category_id"] not in id_map:
                raise ValueError(
                    f"Annotation {ann.get('id')} in '{json_file}' has category_id {ann['category_id']} "
                    "not listed in its 'categories'"
                )
            obj["category_id"] = id_map[ann["category_id"]]
            objs.append(obj)
        record["annotations"] = objs
        dataset_dicts.append(record)
    if num_without_segm:
        logger.warning("Filtered out %d instances without a valid segmentation in %s", num_without_segm, json_file)
    logger.info("Loaded %d images in COCO format from %s", len(dataset_dicts), json_file)
    return dataset_dicts


def register_coco_instances(name: str, metadata: dict, json_file: str, image_root: str) -> None:
    """Register a COCO-format instances dataset (Detectron2's ``register_coco_instances``).

    Sets the metadata keys ``json_file``, ``image_root``, ``evaluator_type="coco"`` plus
    ``metadata``. Lazy: nothing is read until ``DatasetCatalog.get(name)``.

    Raises:
        ValueError: ``name`` is already registered.
    """
    DatasetCatalog.register(name, functools.partial(load_coco_json, json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata)


def _load_builtin_coco(name: str, image_rel: str, json_rel: str, root: Optional[str]) -> List[dict]:
    return load_coco_json(join_root(root, json_rel), join_root(root, image_rel), name)


def register_all_coco_instances(root: Optional[str] = None) -> None:
    """Register ``coco_2017_train`` and ``coco_2017_val``.

    Args:
        root: datasets root; None resolves ``$DETECTRON2_DATASETS`` each time a dataset loads
            (the metadata paths record the root seen now).
    """
    meta = get_coco_instances_meta()
    for name, (image_rel, json_rel) in COCO_INSTANCE_SPLITS.items():
        DatasetCatalog.register(name, functools.partial(_load_builtin_coco, name, image_rel, json_rel, root))
        MetadataCatalog.get(name).set(
            json_file=join_root(root, json_rel), image_root=join_root(root, image_rel), evaluator_type="coco", **meta
        )
