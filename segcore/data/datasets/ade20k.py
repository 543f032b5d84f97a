"""ADE20K-150 (SceneParsing) semantic segmentation: ``ade20k_sem_seg_train`` / ``ade20k_sem_seg_val``.

Layout (as Detectron2 / MaskFormer expect it, made by ``datasets/prepare_ade20k_sem_seg.py``)::

    $DETECTRON2_DATASETS/ADEChallengeData2016/
      images/{training,validation}/*.jpg
      annotations_detectron2/{training,validation}/*.png   # label k-1 for class k, 255 = ignore

Metadata: the 150 class names and colours of ``ade20k_150.json`` (the names exactly as in
Detectron2's ``ADE20K_SEM_SEG_CATEGORIES``), ``ignore_label=255``, ``evaluator_type="sem_seg"``.
"""
from __future__ import annotations

import os

from .categories import load_categories, stuff_classes_and_colors
from .sem_seg import register_sem_seg_dataset

__all__ = ["ADE20K_SPLITS", "register_all_ade20k"]

#: dataset name -> (image folder, annotation folder), relative to the datasets root
ADE20K_SPLITS = {
    "ade20k_sem_seg_train": (
        "ADEChallengeData2016/images/training",
        "ADEChallengeData2016/annotations_detectron2/training",
    ),
    "ade20k_sem_seg_val": (
        "ADEChallengeData2016/images/validation",
        "ADEChallengeData2016/annotations_detectron2/validation",
    ),
}


def register_all_ade20k(root: str) -> None:
    """Register the ADE20K-150 semantic splits found under ``root`` (the datasets folder)."""
    stuff_classes, stuff_colors = stuff_classes_and_colors(load_categories("ade20k_150"))
    for name, (image_dir, gt_dir) in ADE20K_SPLITS.items():
        register_sem_seg_dataset(
            name,
            os.path.join(root, image_dir),
            os.path.join(root, gt_dir),
            stuff_classes=stuff_classes,
            stuff_colors=stuff_colors,
            ignore_label=255,
            evaluator_type="sem_seg",
            image_ext="jpg",
            gt_ext="png",
        )
