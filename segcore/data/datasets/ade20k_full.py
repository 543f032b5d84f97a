"""ADE20K-Full semantic segmentation (847 classes): ``ade20k_full_sem_seg_train`` and
``ade20k_full_sem_seg_val``, as MaskFormer / Mask2Former's ``register_ade20k_full.py``.

Layout under ``$DETECTRON2_DATASETS`` (made by ``datasets/prepare_ade20k_full_sem_seg.py``)::

    ADE20K_2021_17_01/
      images_detectron2/{training,validation}/*.jpg
      annotations_detectron2/{training,validation}/*.tif   # uint16: trainId 0..846, 65535 = ignore

Metadata: ``stuff_classes`` (847 names of ``ade20k_full_847.json`` in trainId order),
``ignore_label=65535``, ``evaluator_type="sem_seg"``. The labels are read as 16-bit images
(``segcore.data.detection_utils.read_sem_seg`` gives uint16 for PIL mode "I;16").
"""
from __future__ import annotations

from typing import Dict, Optional

from .categories import load_categories
from .paths import register_root_relative_sem_seg

__all__ = ["ADE20K_FULL_SPLITS", "ADE20K_FULL_IGNORE_LABEL", "get_ade20k_full_meta", "register_all_ade20k_full"]

#: label value of unlabelled / unmapped pixels
ADE20K_FULL_IGNORE_LABEL = 65535

#: name -> (image folder, label folder), relative to the datasets root
ADE20K_FULL_SPLITS: Dict[str, tuple] = {
    "ade20k_full_sem_seg_train": (
        "ADE20K_2021_17_01/images_detectron2/training",
        "ADE20K_2021_17_01/annotations_detectron2/training",
    ),
    "ade20k_full_sem_seg_val": (
        "ADE20K_2021_17_01/images_detectron2/validation",
        "ADE20K_2021_17_01/annotations_detectron2/validation",
    ),
}


def get_ade20k_full_meta() -> dict:
    """``{"stuff_classes": [847 names]}`` in trainId order (the original sets only this key)."""
    cats = load_categories("ade20k_full_847")
    if [c["trainId"] for c in cats] != list(range(len(cats))) or len(cats) != 847:
        raise ValueError("ade20k_full_847.json must list 847 categories with trainId 0..846 in order")
    return {"stuff_classes": [c["name"] for c in cats]}


def register_all_ade20k_full(root: Optional[str] = None) -> None:
    """Register the ADE20K-Full splits (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_ade20k_full_meta()
    for name, (image_rel, gt_rel) in ADE20K_FULL_SPLITS.items():
        register_root_relative_sem_seg(
            name,
            image_rel,
            gt_rel,
            root,
            dict(evaluator_type="sem_seg", ignore_label=ADE20K_FULL_IGNORE_LABEL, **meta),
            gt_ext="tif",
            image_ext="jpg",
        )
