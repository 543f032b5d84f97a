"""Mapillary Vistas semantic (65 classes) and panoptic segmentation, as Mask2Former's
``register_mapillary_vistas.py`` and ``register_mapillary_vistas_panoptic.py``.

Layout under ``$DETECTRON2_DATASETS`` (the v1.2 release as downloaded)::

    mapillary_vistas/
      {training,validation}/images/*.jpg
      {training,validation}/labels/*.png            # pixel = position in mapillary_vistas_65.json, 65 = unlabeled
      {training,validation}/panoptic/*.png
      {training,validation}/panoptic/panoptic_2018.json

Datasets:

* ``mapillary_vistas_sem_seg_{train,val}``: ``stuff_classes`` / ``stuff_colors`` (the 65
  evaluated "readable" names), ``ignore_label=65``, ``evaluator_type="sem_seg"``.
* ``mapillary_vistas_panoptic_{train,val}``: ids 1..65 -> 0..64; all four class / colour
  lists hold the 65 entries; ``evaluator_type="mapillary_vistas_panoptic_seg"``,
  ``ignore_label=65``, ``label_divisor=1000``; each dict also has ``sem_seg_file_name``.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Optional

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories, panoptic_metadata
from .coco_panoptic import load_panoptic_json
from .paths import join_root, register_root_relative_sem_seg

__all__ = [
    "MAPILLARY_VISTAS_IGNORE_LABEL",
    "MAPILLARY_VISTAS_SEM_SEG_SPLITS",
    "MAPILLARY_VISTAS_PANOPTIC_SPLITS",
    "get_mapillary_vistas_meta",
    "get_mapillary_vistas_panoptic_meta",
    "register_all_mapillary_vistas",
    "register_all_mapillary_vistas_panoptic",
]

#: "void--unlabeled" (position 65): not trained or evaluated
MAPILLARY_VISTAS_IGNORE_LABEL = 65

#: name -> (image folder, label folder)
MAPILLARY_VISTAS_SEM_SEG_SPLITS: Dict[str, tuple] = {
    "mapillary_vistas_sem_seg_train": ("mapillary_vistas/training/images", "mapillary_vistas/training/labels"),
    "mapillary_vistas_sem_seg_val": ("mapillary_vistas/validation/images", "mapillary_vistas/validation/labels"),
}

#: name -> (image folder, panoptic PNG folder, panoptic json, semantic folder)
MAPILLARY_VISTAS_PANOPTIC_SPLITS: Dict[str, tuple] = {
    f"mapillary_vistas_panoptic_{name}": (
        f"mapillary_vistas/{split}/images",
        f"mapillary_vistas/{split}/panoptic",
        f"mapillary_vistas/{split}/panoptic/panoptic_2018.json",
        f"mapillary_vistas/{split}/labels",
    )
    for name, split in (("train", "training"), ("val", "validation"))
}


def get_mapillary_vistas_meta() -> dict:
    """``stuff_classes`` / ``stuff_colors`` of the 65 evaluated classes (``readable`` names)."""
    cats = [c for c in load_categories("mapillary_vistas_65") if c["evaluate"]]
    if len(cats) != 65:
        raise ValueError(f"mapillary_vistas_65.json must hold 65 evaluated classes, found {len(cats)}")
    return {"stuff_classes": [c["readable"] for c in cats], "stuff_colors": [list(c["color"]) for c in cats]}


def get_mapillary_vistas_panoptic_meta() -> dict:
    """Mask2Former's Mapillary Vistas panoptic ``get_metadata()`` (see the module docstring)."""
    return panoptic_metadata(load_categories("mapillary_vistas_panoptic"), thing_classes_are_things_only=False,
                             stuff_ids_cover_things=True)


def register_all_mapillary_vistas(root: Optional[str] = None) -> None:
    """Register ``mapillary_vistas_sem_seg_{train,val}`` (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_mapillary_vistas_meta()
    for name, (image_rel, gt_rel) in MAPILLARY_VISTAS_SEM_SEG_SPLITS.items():
        register_root_relative_sem_seg(
            name, image_rel, gt_rel, root,
            dict(evaluator_type="sem_seg", ignore_label=MAPILLARY_VISTAS_IGNORE_LABEL, **meta),
        )


def _load_panoptic(rels: tuple, meta: dict, root: Optional[str]) -> List[dict]:
    image_rel, pan_rel, json_rel, sem_rel = rels
    return load_panoptic_json(
        join_root(root, json_rel), join_root(root, image_rel), join_root(root, pan_rel), meta,
        sem_seg_dir=join_root(root, sem_rel), int_image_id=False,
    )


def register_all_mapillary_vistas_panoptic(root: Optional[str] = None) -> None:
    """Register ``mapillary_vistas_panoptic_{train,val}`` (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_mapillary_vistas_panoptic_meta()
    for name, rels in MAPILLARY_VISTAS_PANOPTIC_SPLITS.items():
        image_rel, pan_rel, json_rel, _ = rels
        DatasetCatalog.register(name, functools.partial(_load_panoptic, rels, meta, root))
        MetadataCatalog.get(name).set(
            panoptic_root=join_root(root, pan_rel),
            image_root=join_root(root, image_rel),
            panoptic_json=join_root(root, json_rel),
            json_file=None,
            evaluator_type="mapillary_vistas_panoptic_seg",
            ignore_label=MAPILLARY_VISTAS_IGNORE_LABEL,
            label_divisor=1000,
            **meta,
        )
