#!/usr/bin/env python
"""Convert COCO-Stuff-10k (``cocostuff-10k-v1.1.zip``) to the Detectron2 layout (as MaskFormer's
``datasets/prepare_coco_stuff_10k_v1.0_sem_seg.py``).

Input under ``coco/coco_stuff_10k/``: ``imageLists/{train,test}.txt``, ``images/*.jpg``,
``annotations/*.mat`` (field ``S``: 1 = unlabelled, 2 + k = class k of ``coco_stuff_171.json``).
Output: ``images_detectron2/{train,test}/*.jpg`` (copies) and
``annotations_detectron2/{train,test}/*.png`` with ``S - 2`` on uint8, as the original: label 1
becomes 255 (ignore) and the classes become their contiguous ids 0..170.

The ``.mat`` files are read with ``scipy.io.loadmat`` (v1.1 release); v7.3 (HDF5) files of the
v1.0 release need ``h5py`` and are transposed as the original does.

Usage::

    python datasets/prepare_coco_stuff_10k_sem_seg.py           # $DETECTRON2_DATASETS or ./datasets
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Dict

import numpy as np
from PIL import Image
from tqdm import tqdm

from segcore.data.datasets.categories import load_categories

SPLITS = ("train", "test")
#: number of classes (entries of coco_stuff_171.json)
NUM_CLASSES = len(load_categories("coco_stuff_171"))


def read_mat_labels(path: str) -> np.ndarray:
    """The (H, W) uint8 ``S`` array of a COCO-Stuff ``.mat`` file.

    Raises:
        KeyError: no ``S`` field; ImportError: a v7.3 file and no ``h5py``.
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
        if "S" not in mat:
            raise KeyError(f"'{path}' has no 'S' field (fields: {sorted(k for k in mat if not k.startswith('__'))})")
        return np.asarray(mat["S"]).astype(np.uint8)
    except NotImplementedError:  # MATLAB v7.3 (HDF5)
        try:
            import h5py
        except ImportError as e:
            raise ImportError(f"'{path}' is a MATLAB v7.3 file: reading it needs `pip install h5py`") from e
        with h5py.File(path, "r") as f:
            return np.transpose(np.array(f["S"])).astype(np.uint8)


def convert_labels(S: np.ndarray) -> np.ndarray:
    """``S`` (1 = unlabelled, 2 + k = class k) -> ``S - 2`` on uint8 (255 = ignore, 0..170 = classes).

    Raises:
        ValueError: a value above 172 (not a COCO-Stuff-10k label; the message gives it).
    """
    S = np.asarray(S)
    if S.size and int(S.max()) > 1 + NUM_CLASSES:
        raise ValueError(f"COCO-Stuff-10k labels must be in 1..{1 + NUM_CLASSES}; found {int(S.max())}")
    return S.astype(np.uint8) - np.uint8(2)


def convert_split(dataset_dir: str, split: str) -> int:
    """Copy images and write labels of one split; returns the number of images.

    Raises:
        FileNotFoundError: the image list, an image or a ``.mat`` file is missing (named).
        ValueError: label and image sizes differ (named).
    """
    list_file = os.path.join(dataset_dir, "imageLists", f"{split}.txt")
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"{list_file} does not exist: unzip cocostuff-10k-v1.1.zip into {dataset_dir}")
    with open(list_file) as f:
        names = [line.strip() for line in f if line.strip()]
    image_dir = os.path.join(dataset_dir, "images_detectron2", split)
    ann_dir = os.path.join(dataset_dir, "annotations_detectron2", split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for name in tqdm(names, desc=split, disable=not sys.stderr.isatty()):
        src_img = os.path.join(dataset_dir, "images", name + ".jpg")
        dst_img = os.path.join(image_dir, name + ".jpg")
        shutil.copyfile(src_img, dst_img)
        labels = convert_labels(read_mat_labels(os.path.join(dataset_dir, "annotations", name + ".mat")))
        with Image.open(dst_img) as im:
            w, h = im.size
        if labels.shape != (h, w):
            raise ValueError(f"Labels of '{name}' are {labels.shape}, its image is {(h, w)}")
        Image.fromarray(labels).save(os.path.join(ann_dir, name + ".png"))
    return len(names)


def main(argv=None) -> Dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.getenv("DETECTRON2_DATASETS", "datasets"), help="datasets root")
    args = parser.parse_args(argv)
    dataset_dir = os.path.join(args.root, "coco", "coco_stuff_10k")
    counts = {split: convert_split(dataset_dir, split) for split in SPLITS}
    for split, n in counts.items():
        print(f"{split}: wrote {n} images and labels under {dataset_dir}")
    return counts


if __name__ == "__main__":
    main()
