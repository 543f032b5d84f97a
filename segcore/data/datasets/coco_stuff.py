"""COCO-Stuff-10k semantic segmentation (171 classes): ``coco_2017_train_stuff_10k_sem_seg`` and
``coco_2017_test_stuff_10k_sem_seg``, as MaskFormer's ``register_coco_stuff_10k.py``.

Layout under ``$DETECTRON2_DATASETS`` (made by ``datasets/prepare_coco_stuff_10k_sem_seg.py``)::

    coco/coco_stuff_10k/
      images_detectron2/{train,test}/*.jpg
      annotations_detectron2/{train,test}/*.png    # 0..170 = position in coco_stuff_171.json, 255 = ignore

Metadata: ``stuff_classes`` (171 names), ``stuff_dataset_id_to_contiguous_id`` (COCO ids ->
0..170), ``ignore_label=255``, ``evaluator_type="sem_seg"``; no colours (as the original).
"""
from __future__ import annotations

from typing import Dict, Optional

from .categories import load_categories
from .paths import register_root_relative_sem_seg

__all__ = ["COCO_STUFF_10K_SPLITS", "get_coco_stuff_meta", "register_all_coco_stuff_10k"]

#: name -> (image folder, label folder), relative to the datasets root
COCO_STUFF_10K_SPLITS: Dict[str, tuple] = {
    "coco_2017_train_stuff_10k_sem_seg": (
        "coco/coco_stuff_10k/images_detectron2/train",
        "coco/coco_stuff_10k/annotations_detectron2/train",
    ),
    "coco_2017_test_stuff_10k_sem_seg": (
        "coco/coco_stuff_10k/images_detectron2/test",
        "coco/coco_stuff_10k/annotations_detectron2/test",
    ),
}


def get_coco_stuff_meta() -> dict:
    """MaskFormer's ``_get_coco_stuff_meta``: ``stuff_dataset_id_to_contiguous_id`` ({id: 0..170})
    and ``stuff_classes`` (171 names)."""
    cats = load_categories("coco_stuff_171")
    if len(cats) != 171:
        raise ValueError(f"coco_stuff_171.json must hold 171 categories, found {len(cats)}")
    return {
        "stuff_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
        "stuff_classes": [c["name"] for c in cats],
    }


def register_all_coco_stuff_10k(root: Optional[str] = None) -> None:
    """Register the COCO-Stuff-10k splits (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_coco_stuff_meta()
    for name, (image_rel, gt_rel) in COCO_STUFF_10K_SPLITS.items():
        register_root_relative_sem_seg(
            name, image_rel, gt_rel, root, dict(evaluator_type="sem_seg", ignore_label=255, **meta)
        )
