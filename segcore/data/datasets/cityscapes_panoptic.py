"""Cityscapes panoptic segmentation: ``cityscapes_fine_panoptic_{train,val}`` (Detectron2's
``cityscapes_panoptic.py``).

Layout under ``$DETECTRON2_DATASETS`` (the panoptic files are made by cityscapesscripts'
``createPanopticImgs``; ``*_labelTrainIds.png`` by ``createTrainIdLabelImgs``)::

    cityscapes/
      leftImg8bit/{train,val}/<city>/*_leftImg8bit.png
      gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png
      gtFine/cityscapes_panoptic_{train,val}/*_gtFine_panoptic.png
      gtFine/cityscapes_panoptic_{train,val}.json

Metadata: ``thing_classes`` / ``thing_colors`` / ``stuff_classes`` / ``stuff_colors`` (all 19,
trainId order), ``thing_dataset_id_to_contiguous_id`` (label ids 24..33 -> trainId 11..18),
``stuff_dataset_id_to_contiguous_id`` (7..23 -> 0..10), ``panoptic_root``, ``image_root``,
``panoptic_json``, ``gt_dir``, ``evaluator_type="cityscapes_panoptic_seg"``,
``ignore_label=255``, ``label_divisor=1000``.
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
from .coco_panoptic import _convert_segment
from .paths import join_root, require_dir, require_file

__all__ = ["CITYSCAPES_PANOPTIC_SPLITS", "get_cityscapes_panoptic_meta", "load_cityscapes_panoptic", "register_all_cityscapes_panoptic"]

logger = logging.getLogger(__name__)

#: name -> (image folder, panoptic PNG folder, panoptic json), relative to the datasets root
CITYSCAPES_PANOPTIC_SPLITS: Dict[str, tuple] = {
    "cityscapes_fine_panoptic_train": (
        "cityscapes/leftImg8bit/train",
        "cityscapes/gtFine/cityscapes_panoptic_train",
        "cityscapes/gtFine/cityscapes_panoptic_train.json",
    ),
    "cityscapes_fine_panoptic_val": (
        "cityscapes/leftImg8bit/val",
        "cityscapes/gtFine/cityscapes_panoptic_val",
        "cityscapes/gtFine/cityscapes_panoptic_val.json",
    ),
}


def get_cityscapes_panoptic_meta() -> dict:
    """Metadata of Detectron2's ``register_all_cityscapes_panoptic`` (see the module docstring)."""
    return panoptic_metadata(load_categories("cityscapes"), thing_classes_are_things_only=False,
                             stuff_ids_cover_things=False, contiguous_id_key="trainId")


def load_cityscapes_panoptic(image_dir: str, gt_dir: str, gt_json: str, meta: dict) -> List[dict]:
    """Cityscapes panoptic dataset dicts (as Detectron2's ``load_cityscapes_panoptic``).

    Images ``<image_dir>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` are matched to the json
    annotation whose "image_id" is ``<city>_<seq>_<frame>``.

    Returns:
        list[dict] with "file_name", "image_id" (str), "sem_seg_file_name"
        (``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png``), "pan_seg_file_name",
        "segments_info" (category ids as contiguous trainIds, with "isthing").

    Raises:
        FileNotFoundError: a folder, the json, a panoptic PNG or a labelTrainIds file is missing.
        ValueError: an image without an annotation in the json (named), or no images.
    """
    require_dir(image_dir, "Cityscapes image")
    require_dir(gt_dir, "Cityscapes panoptic PNG")
    require_file(gt_json, "Cityscapes panoptic json")
    with PathManager.open(gt_json) as f:
        json_info = json.load(f)
    anns = {a["image_id"]: a for a in json_info.get("annotations", [])}
    ret = []
    for city in sorted(PathManager.ls(image_dir)):
        city_dir = os.path.join(image_dir, city)
        if not PathManager.isdir(city_dir):
            continue
        for basename in sorted(PathManager.ls(city_dir)):
            if not basename.endswith("_leftImg8bit.png"):
                continue
            image_file = os.path.join(city_dir, basename)
            image_id = "_".join(basename.split("_")[:3])
            if image_id not in anns:
                raise ValueError(f"Image '{image_file}' (image_id '{image_id}') has no annotation in '{gt_json}'")
            ann = anns[image_id]
            label_file = require_file(os.path.join(gt_dir, ann["file_name"]), "Cityscapes panoptic PNG")
            sem_file = os.path.splitext(image_file.replace("leftImg8bit", "gtFine"))[0] + "_labelTrainIds.png"
            if not PathManager.isfile(sem_file):
                raise FileNotFoundError(
                    f"'{sem_file}' not found. Make the *_gtFine_labelTrainIds.png files with cityscapesscripts' "
                    "createTrainIdLabelImgs (see datasets/README.md)."
                )
            ret.append(
                {
                    "file_name": image_file,
                    "image_id": image_id,
                    "sem_seg_file_name": sem_file,
                    "pan_seg_file_name": label_file,
                    "segments_info": [_convert_segment(s, meta, gt_json, ann["file_name"]) for s in ann["segments_info"]],
                }
            )
    if not ret:
        raise ValueError(f"No '*_leftImg8bit.png' images found in the city folders of '{image_dir}'")
    logger.info("Loaded %d images with panoptic segmentation from %s", len(ret), image_dir)
    return ret


def _load_builtin(rels: tuple, meta: dict, root: Optional[str]) -> List[dict]:
    image_rel, pan_rel, json_rel = rels
    return load_cityscapes_panoptic(join_root(root, image_rel), join_root(root, pan_rel), join_root(root, json_rel), meta)


def register_all_cityscapes_panoptic(root: Optional[str] = None) -> None:
    """Register ``cityscapes_fine_panoptic_{train,val}`` (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_cityscapes_panoptic_meta()
    for name, rels in CITYSCAPES_PANOPTIC_SPLITS.items():
        image_rel, pan_rel, json_rel = rels
        DatasetCatalog.register(name, functools.partial(_load_builtin, rels, meta, root))
        MetadataCatalog.get(name).set(
            panoptic_root=join_root(root, pan_rel),
            image_root=join_root(root, image_rel),
            panoptic_json=join_root(root, json_rel),
            gt_dir=join_root(root, pan_rel).replace("cityscapes_panoptic_", ""),
            evaluator_type="cityscapes_panoptic_seg",
            ignore_label=255,
            label_divisor=1000,
            **meta,
        )
