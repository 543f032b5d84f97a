#!/usr/bin/env python
"""Make ADE20K-150 panoptic annotations (as Mask2Former's ``datasets/prepare_ade20k_pan_seg.py``).

Input under ``ADEChallengeData2016/``: ``images/<split>/*.jpg``, ``annotations/<split>/*.png``
(semantic, 0 = other, k = class k-1) and ``annotations_instance/<split>/*.png`` (the ADE20K
instance release: R = instance class 1..100, 0 = none; G = instance number, 0 = none).
Output: ``ade20k_panoptic_{train,val}/*.png`` (COCO panoptic PNGs) and
``ade20k_panoptic_{train,val}.json`` (categories = the 150 classes, ids 0..149, ``isthing`` for
the 100 instance classes). Stuff segments come from the semantic map, then thing segments from
the instance map are pasted over them. Instance class k maps to the k-th entry of
``ade20k_instance_100.json`` (the original's ``ade20k_instance_catid_mapping.txt``).

Usage::

    python datasets/prepare_ade20k_pan_seg.py            # $DETECTRON2_DATASETS or ./datasets
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List

import numpy as np
from PIL import Image
from tqdm import tqdm

from segcore.data.datasets.categories import load_categories
from segcore.data.datasets.panoptic_ids import IdGenerator

from prepare_ade20k_common import convert_splits_main  # beside this script


def instance_to_semantic_map() -> Dict[int, int]:
    """{instance class 0..99 (R channel - 1): ADE20K-150 class id 0..149}."""
    return {k: c["id"] for k, c in enumerate(load_categories("ade20k_instance_100"))}


def panoptic_categories() -> List[dict]:
    """The 150 categories written to the json: name, id, isthing, colour (the original's PALETTE,
    which gives "skyscraper" (48) [140, 140, 200] where ade20k_150.json has [140, 140, 140])."""
    things = set(instance_to_semantic_map().values())
    cats = []
    for c in load_categories("ade20k_150"):
        color = [140, 140, 200] if c["id"] == 48 else list(c["color"])
        cats.append({"name": c["name"], "id": c["id"], "isthing": int(c["id"] in things), "color": color})
    return cats


def _bbox(mask: np.ndarray) -> List[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def convert_image(sem: np.ndarray, ins: np.ndarray, categories: Dict[int, dict], map_id: Dict[int, int], where: str = ""):
    """One image -> ((H, W, 3) uint8 panoptic PNG, segments_info).

    Args:
        sem: (H, W) uint8 ADE20K semantic labels (0 = other).
        ins: (H, W, >=2) uint8 instance labels (R = class 1..100, G = instance number).

    Raises:
        ValueError: an instance covering several classes, or a bad array shape (``where`` names it).
    """
    if sem.ndim != 2 or ins.ndim != 3 or sem.shape != ins.shape[:2]:
        raise ValueError(f"{where}: semantic {sem.shape} and instance {ins.shape} maps do not match")
    pan = np.zeros(sem.shape + (3,), dtype=np.uint8)
    ids = IdGenerator(categories)
    segments = []
    sem_ids = sem - np.uint8(1)  # 0 -> 255
    for cat in np.unique(sem_ids):
        if cat == 255 or categories[int(cat)]["isthing"]:
            continue
        mask = sem_ids == cat
        seg_id, color = ids.get_id_and_color(int(cat))
        pan[mask] = color
        segments.append({"id": int(seg_id), "category_id": int(cat), "area": int(mask.sum()), "bbox": _bbox(mask), "iscrowd": 0})
    ins_cls = ins[..., 0].astype(np.int64) - 1
    for inst in np.unique(ins[..., 1]):
        if inst == 0:
            continue
        mask = ins[..., 1] == inst
        classes = np.unique(ins_cls[mask])
        if len(classes) != 1 or int(classes[0]) not in map_id:
            raise ValueError(f"{where}: instance {inst} has instance classes {(classes + 1).tolist()}, expected one in 1..100")
        cat = map_id[int(classes[0])]
        seg_id, color = ids.get_id_and_color(cat)
        pan[mask] = color
        segments.append({"id": int(seg_id), "category_id": int(cat), "area": int(mask.sum()), "bbox": _bbox(mask), "iscrowd": 0})
    return pan, segments


def convert_split(dataset_dir: str, name: str, dirname: str) -> int:
    """Write the panoptic PNGs and json of one split; returns the number of images.

    Raises:
        FileNotFoundError: an input folder or file is missing (named).
    """
    image_dir = os.path.join(dataset_dir, "images", dirname)
    sem_dir = os.path.join(dataset_dir, "annotations", dirname)
    ins_dir = os.path.join(dataset_dir, "annotations_instance", dirname)
    for d in (image_dir, sem_dir, ins_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"{d} does not exist: see datasets/README.md (ADE20K panoptic)")
    out_dir = os.path.join(dataset_dir, f"ade20k_panoptic_{name}")
    os.makedirs(out_dir, exist_ok=True)
    cats = panoptic_categories()
    categories = {c["id"]: c for c in cats}
    map_id = instance_to_semantic_map()
    images, annotations = [], []
    for fname in tqdm(sorted(f for f in os.listdir(image_dir) if f.endswith(".jpg")), desc=name, disable=not sys.stderr.isatty()):
        image_id = fname.split(".")[0]
        with Image.open(os.path.join(image_dir, fname)) as im:
            width, height = im.size
        sem = np.asarray(Image.open(os.path.join(sem_dir, image_id + ".png")))
        ins = np.asarray(Image.open(os.path.join(ins_dir, image_id + ".png")))
        pan, segments = convert_image(sem, ins, categories, map_id, where=os.path.join(ins_dir, image_id + ".png"))
        Image.fromarray(pan).save(os.path.join(out_dir, image_id + ".png"))
        images.append({"id": image_id, "file_name": fname, "width": width, "height": height})
        annotations.append({"image_id": image_id, "file_name": image_id + ".png", "segments_info": segments})
    with open(os.path.join(dataset_dir, f"ade20k_panoptic_{name}.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": cats}, f)
    return len(images)


def main(argv=None) -> Dict[str, int]:
    """Convert both splits under ``--root``; returns ``{split: number of images}``."""
    return convert_splits_main(convert_split, __doc__, argv)


if __name__ == "__main__":
    main()
