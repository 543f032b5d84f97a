#!/usr/bin/env python
"""Convert ADE20K-Full (``ADE20K_2021_17_01``) to 847-class 16-bit labels (as MaskFormer's
``datasets/prepare_ade20k_full_sem_seg.py``).

Reads ``ADE20K_2021_17_01/index_ade20k.pkl`` ("folder", "filename" lists; folders relative to
the datasets root) and each image's ``*_seg.png``: class index = ``(R / 10) * 256 + G``, mapped
with ``ade20k_full_847.json`` (``id`` -> ``trainId``), every other value -> 65535 (ignore).
Images and labels with a short side above 512 pixels are resized so the short side is 512
(bilinear / nearest). Output: ``images_detectron2/{training,validation}/*.jpg`` and
``annotations_detectron2/{training,validation}/*.tif`` (uint16). A file whose name has
``_val_`` goes to validation.

Usage::

    python datasets/prepare_ade20k_full_sem_seg.py          # $DETECTRON2_DATASETS or ./datasets
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
from typing import Dict, Tuple

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from segcore.data.datasets.categories import load_categories

IGNORE = 65535
MAX_SIZE = 512


def class_mask(seg_rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 ``*_seg.png`` -> (H, W) int32 ADE20K object-class index ``(R / 10) * 256 + G``."""
    r = seg_rgb[:, :, 0]
    g = seg_rgb[:, :, 1]
    return (r / 10).astype(np.int32) * 256 + g.astype(np.int32)


def to_train_ids(mask: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W) uint16 trainIds 0..846, 65535 for unmapped values."""
    id_map = {c["id"]: c["trainId"] for c in load_categories("ade20k_full_847")}
    out = np.full(mask.shape, IGNORE, dtype=np.uint16)
    for obj_id in np.unique(mask):
        if int(obj_id) in id_map:
            out[mask == obj_id] = id_map[int(obj_id)]
    return out


def resize_pair(img: np.ndarray, lab: np.ndarray, max_size: int = MAX_SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """Shrink so the short side is ``max_size`` pixels when it is larger (as the original)."""
    h, w = img.shape[:2]
    if w >= h > max_size:
        h_new, w_new = max_size, round(w / float(h) * max_size)
    elif h >= w > max_size:
        h_new, w_new = round(h / float(w) * max_size), max_size
    else:
        return img, lab
    img = cv2.resize(img, (w_new, h_new), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(lab, (w_new, h_new), interpolation=cv2.INTER_NEAREST)
    return img, lab


def convert(root: str) -> Dict[str, int]:
    """Convert every image of the index; returns counts per split.

    Raises:
        FileNotFoundError: the index or an image / ``_seg.png`` is missing (named).
    """
    dataset_dir = os.path.join(root, "ADE20K_2021_17_01")
    index_file = os.path.join(dataset_dir, "index_ade20k.pkl")
    if not os.path.isfile(index_file):
        raise FileNotFoundError(f"{index_file} does not exist: unzip ADE20K_2021_17_01 under {root} (see datasets/README.md)")
    with open(index_file, "rb") as f:
        index = pickle.load(f)
    counts = {"training": 0, "validation": 0}
    for split in counts:
        os.makedirs(os.path.join(dataset_dir, "images_detectron2", split), exist_ok=True)
        os.makedirs(os.path.join(dataset_dir, "annotations_detectron2", split), exist_ok=True)
    pairs = list(zip(index["folder"], index["filename"]))
    for folder, file_name in tqdm(pairs, disable=not sys.stderr.isatty()):
        split = "validation" if file_name.split("_")[1] == "val" else "training"
        img_path = os.path.join(root, folder, file_name)
        img = np.asarray(Image.open(img_path))
        lab = class_mask(np.asarray(Image.open(img_path.replace(".jpg", "_seg.png")).convert("RGB")))
        img, lab = resize_pair(img, lab)
        out = to_train_ids(lab)
        Image.fromarray(img).save(os.path.join(dataset_dir, "images_detectron2", split, file_name))
        Image.fromarray(out).save(os.path.join(dataset_dir, "annotations_detectron2", split, file_name.replace(".jpg", ".tif")))
        counts[split] += 1
    return counts


def main(argv=None) -> Dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.getenv("DETECTRON2_DATASETS", "datasets"), help="datasets root")
    args = parser.parse_args(argv)
    counts = convert(args.root)
    print(counts)
    return counts


if __name__ == "__main__":
    main()
