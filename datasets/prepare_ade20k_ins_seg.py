#!/usr/bin/env python
"""Make ADE20K-150 instance annotations in COCO format (as Mask2Former's
``datasets/prepare_ade20k_ins_seg.py``).

Input under ``ADEChallengeData2016/``: ``images/<split>/*.jpg`` and
``annotations_instance/<split>/*.png`` (R = instance class 1..100, G = instance number, 0 = none).
Output: ``ade20k_instance_{train,val}.json`` with categories ``ade20k_instance_100.json``
(ids = ADE20K-150 ids), one RLE annotation per instance, image ids = file stems.

Usage::

    python datasets/prepare_ade20k_ins_seg.py            # $DETECTRON2_DATASETS or ./datasets
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image
from tqdm import tqdm

from segcore.data.datasets.categories import load_categories

from prepare_ade20k_common import convert_splits_main  # beside this script


def instance_annotations(ins: np.ndarray, image_id: str, first_ann_id: int, where: str = "") -> List[dict]:
    """COCO annotations (RLE, XYWH bbox, category = ADE20K-150 id) of one instance PNG array.

    Raises:
        ValueError: an instance covering several classes or a class outside 1..100 (named).
    """
    cats = load_categories("ade20k_instance_100")
    if ins.ndim != 3:
        raise ValueError(f"{where}: expected an RGB instance PNG, got shape {ins.shape}")
    annos, ann_id = [], first_ann_id
    for inst in np.unique(ins[..., 1]):
        if inst == 0:
            continue
        mask = ins[..., 1] == inst
        classes = np.unique(ins[..., 0][mask])
        if len(classes) != 1 or not 1 <= int(classes[0]) <= len(cats):
            raise ValueError(f"{where}: instance {inst} has instance classes {classes.tolist()}, expected one in 1..100")
        ys, xs = np.nonzero(mask)
        rle = mask_util.encode(np.asfortranarray(mask[:, :, None].astype(np.uint8)))[0]
        rle["counts"] = rle["counts"].decode("utf-8")
        annos.append(
            {
                "id": ann_id,
                "image_id": image_id,
                "iscrowd": 0,
                "category_id": int(cats[int(classes[0]) - 1]["id"]),
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                "segmentation": rle,
                "area": int(mask_util.area(rle)),
            }
        )
        ann_id += 1
    return annos


def convert_split(dataset_dir: str, name: str, dirname: str) -> int:
    """Write ``ade20k_instance_<name>.json``; returns the number of images.

    Raises:
        FileNotFoundError: an input folder is missing (named).
    """
    image_dir = os.path.join(dataset_dir, "images", dirname)
    ins_dir = os.path.join(dataset_dir, "annotations_instance", dirname)
    for d in (image_dir, ins_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"{d} does not exist: see datasets/README.md (ADE20K instance)")
    images, annotations = [], []
    for fname in tqdm(sorted(f for f in os.listdir(image_dir) if f.endswith(".jpg")), desc=name, disable=not sys.stderr.isatty()):
        image_id = fname.split(".")[0]
        with Image.open(os.path.join(image_dir, fname)) as im:
            width, height = im.size
        images.append({"id": image_id, "file_name": fname, "width": width, "height": height})
        path = os.path.join(ins_dir, image_id + ".png")
        annotations += instance_annotations(np.asarray(Image.open(path)), image_id, len(annotations) + 1, where=path)
    categories = [dict(c) for c in load_categories("ade20k_instance_100")]
    with open(os.path.join(dataset_dir, f"ade20k_instance_{name}.json"), "w") as f:
        json.dump({"images": images, "categories": categories, "annotations": annotations}, f)
    return len(images)


def main(argv=None) -> Dict[str, int]:
    """Convert both splits under ``--root``; returns ``{split: number of images}``."""
    return convert_splits_main(convert_split, __doc__, argv)


if __name__ == "__main__":
    main()
