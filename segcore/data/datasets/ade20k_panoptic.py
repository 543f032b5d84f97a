"""ADE20K-150 panoptic and instance segmentation, as Mask2Former's
``register_ade20k_panoptic.py`` and ``register_ade20k_instance.py``.

Layout under ``$DETECTRON2_DATASETS`` (made by ``datasets/prepare_ade20k_sem_seg.py``,
``datasets/prepare_ade20k_pan_seg.py`` and ``datasets/prepare_ade20k_ins_seg.py``)::

    ADEChallengeData2016/
      images/{training,validation}/*.jpg
      annotations_detectron2/{training,validation}/*.png
      ade20k_panoptic_{train,val}/*.png
      ade20k_panoptic_{train,val}.json
      ade20k_instance_{train,val}.json

Datasets:

* ``ade20k_panoptic_{train,val}``: category id = position in ``ade20k_150.json`` = contiguous
  id (things and stuff interleaved); ``thing_classes`` / ``thing_colors`` hold the 100 things,
  ``stuff_classes`` / ``stuff_colors`` all 150; ``stuff_dataset_id_to_contiguous_id`` maps all
  150; ``evaluator_type="ade20k_panoptic_seg"``, ``ignore_label=255``, ``label_divisor=1000``.
  Each dict also has ``sem_seg_file_name`` (from ``annotations_detectron2``).
* ``ade20k_instance_{train,val}``: COCO-format instances, the 100 things of
  ``ade20k_instance_100.json`` (ids 7..149 -> 0..99), ``evaluator_type="coco"``.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Optional

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories, panoptic_metadata
from .coco import load_coco_json
from .coco_panoptic import load_panoptic_split, panoptic_dataset_metadata
from .paths import join_root

__all__ = [
    "ADE20K_PANOPTIC_SPLITS",
    "ADE20K_INSTANCE_SPLITS",
    "get_ade20k_panoptic_meta",
    "get_ade20k_instances_meta",
    "register_all_ade20k_panoptic",
    "register_all_ade20k_instance",
]

#: name -> (image folder, panoptic PNG folder, panoptic json, semantic folder, instances json)
ADE20K_PANOPTIC_SPLITS: Dict[str, tuple] = {
    "ade20k_panoptic_train": (
        "ADEChallengeData2016/images/training",
        "ADEChallengeData2016/ade20k_panoptic_train",
        "ADEChallengeData2016/ade20k_panoptic_train.json",
        "ADEChallengeData2016/annotations_detectron2/training",
        "ADEChallengeData2016/ade20k_instance_train.json",
    ),
    "ade20k_panoptic_val": (
        "ADEChallengeData2016/images/validation",
        "ADEChallengeData2016/ade20k_panoptic_val",
        "ADEChallengeData2016/ade20k_panoptic_val.json",
        "ADEChallengeData2016/annotations_detectron2/validation",
        "ADEChallengeData2016/ade20k_instance_val.json",
    ),
}

#: name -> (image folder, instances json)
ADE20K_INSTANCE_SPLITS: Dict[str, tuple] = {
    "ade20k_instance_train": ("ADEChallengeData2016/images/training", "ADEChallengeData2016/ade20k_instance_train.json"),
    "ade20k_instance_val": ("ADEChallengeData2016/images/validation", "ADEChallengeData2016/ade20k_instance_val.json"),
}


def get_ade20k_panoptic_meta() -> dict:
    """Mask2Former's ADE20K panoptic ``get_metadata()`` (see the module docstring)."""
    return panoptic_metadata(load_categories("ade20k_150"), thing_classes_are_things_only=True,
                             stuff_ids_cover_things=True)


def get_ade20k_instances_meta() -> dict:
    """Mask2Former's ``_get_ade_instances_meta``: ``thing_dataset_id_to_contiguous_id`` (100 ids
    -> 0..99) and ``thing_classes`` (100 short names)."""
    cats = load_categories("ade20k_instance_100")
    if len(cats) != 100:
        raise ValueError(f"ade20k_instance_100.json must hold 100 categories, found {len(cats)}")
    return {
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
        "thing_classes": [c["name"] for c in cats],
    }


def _load_instances(name: str, image_rel: str, json_rel: str, root: Optional[str]) -> List[dict]:
    return load_coco_json(join_root(root, json_rel), join_root(root, image_rel), name)


def register_all_ade20k_panoptic(root: Optional[str] = None) -> None:
    """Register ``ade20k_panoptic_{train,val}`` (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_ade20k_panoptic_meta()
    for name, rels in ADE20K_PANOPTIC_SPLITS.items():
        DatasetCatalog.register(name, functools.partial(load_panoptic_split, rels, meta, root, with_sem_seg=True,
                                                        int_image_id=False))
        MetadataCatalog.get(name).set(**panoptic_dataset_metadata(root, rels, "ade20k_panoptic_seg"), **meta)


def register_all_ade20k_instance(root: Optional[str] = None) -> None:
    """Register ``ade20k_instance_{train,val}`` (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_ade20k_instances_meta()
    for name, (image_rel, json_rel) in ADE20K_INSTANCE_SPLITS.items():
        DatasetCatalog.register(name, functools.partial(_load_instances, name, image_rel, json_rel, root))
        MetadataCatalog.get(name).set(
            json_file=join_root(root, json_rel), image_root=join_root(root, image_rel), evaluator_type="coco", **meta
        )
