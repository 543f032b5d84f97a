#!/usr/bin/env python
"""Convert ADE20K (SceneParsing, ADEChallengeData2016) labels to the Detectron2 format.

The release stores ``annotations/{training,validation}/*.png`` with 0 = "other" (ignored) and
1..150 = the classes. Detectron2, MaskFormer and this project read
``annotations_detectron2/{training,validation}/*.png`` with 0..149 = the classes and 255 = ignored,
i.e. ``value - 1`` on uint8 (as the original ``datasets/prepare_ade20k_sem_seg.py``).

Usage::

    python datasets/prepare_ade20k_sem_seg.py                 # $DETECTRON2_DATASETS or ./datasets
    python datasets/prepare_ade20k_sem_seg.py --root /data --dataset-dir ADEChallengeData2016
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Dict

import numpy as np
from PIL import Image
from tqdm import tqdm

SPLITS = ("training", "validation")


def convert_label(label: np.ndarray) -> np.ndarray:
    """ADE20K label (uint8, 0 = ignore, k = class k-1) to Detectron2 (uint8, 255 = ignore).

    Raises:
        ValueError: not a 2-D uint8 array.
    """
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 label map, got shape {label.shape} dtype {label.dtype}")
    return label - np.uint8(1)  # 0 wraps around to 255


def convert_split(dataset_dir: str, split: str) -> int:
    """Convert one split; returns the number of files written (existing outputs are rewritten).

    Raises:
        FileNotFoundError: the split's ``annotations/<split>`` folder is missing.
        ValueError: a file is not a single-channel 8-bit PNG (the message names it).
    """
    src_dir = os.path.join(dataset_dir, "annotations", split)
    dst_dir = os.path.join(dataset_dir, "annotations_detectron2", split)
    if not os.path.isdir(src_dir):
        raise FileNotFoundError(
            f"{src_dir} does not exist: expected the ADEChallengeData2016 release layout "
            "(images/ and annotations/ with training/ and validation/), see datasets/README.md")
    os.makedirs(dst_dir, exist_ok=True)
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".png"))
    for name in tqdm(names, desc=f"ADE20K {split}", disable=not sys.stderr.isatty()):
        path = os.path.join(src_dir, name)
        try:
            label = np.asarray(Image.open(path))
            out = convert_label(label)
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot convert {path}: {e}") from e
        # write to a temporary file and rename, so an interrupted run leaves no truncated PNG
        fd, tmp = tempfile.mkstemp(suffix=".png", dir=dst_dir)
        os.close(fd)
        try:
            Image.fromarray(out).save(tmp, format="PNG")
            os.replace(tmp, os.path.join(dst_dir, name))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return len(names)


def main(argv=None) -> Dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.getenv("DETECTRON2_DATASETS", "datasets"), help="datasets root")
    parser.add_argument("--dataset-dir", default="ADEChallengeData2016", help="folder under the root")
    args = parser.parse_args(argv)
    dataset_dir = os.path.join(args.root, args.dataset_dir)
    counts = {split: convert_split(dataset_dir, split) for split in SPLITS}
    for split, n in counts.items():
        print(f"{split}: wrote {n} labels to {os.path.join(dataset_dir, 'annotations_detectron2', split)}")
    return counts


if __name__ == "__main__":
    main()
