#!/usr/bin/env python
"""Make COCO semantic PNGs from the COCO panoptic annotations (as Mask2Former's
``datasets/prepare_coco_semantic_annos_from_panoptic_annos.py``).

Reads ``coco/annotations/panoptic_{train,val}2017.json`` and ``coco/panoptic_{train,val}2017/*.png``
and writes ``coco/panoptic_semseg_{train,val}2017/*.png``: pixel = position of the segment's
category in ``coco_panoptic.json`` (0..132; things 0..79, stuff 80..132), 255 = unlabelled.

Usage::

    python datasets/prepare_coco_semantic_annos_from_panoptic_annos.py          # $DETECTRON2_DATASETS or ./datasets
    python datasets/prepare_coco_semantic_annos_from_panoptic_annos.py --root /data --splits val2017
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np
from PIL import Image
from tqdm import tqdm

from segcore.data.datasets.categories import load_categories
from segcore.data.datasets.panoptic_ids import rgb2id

SPLITS = ("train2017", "val2017")


def coco_semantic_id_map() -> Dict[int, int]:
    """{COCO category id: position 0..132 in coco_panoptic.json}."""
    return {c["id"]: i for i, c in enumerate(load_categories("coco_panoptic"))}


def panoptic_to_semantic(pan_rgb: np.ndarray, segments_info: List[dict], id_map: Dict[int, int], where: str = "") -> np.ndarray:
    """(H, W, 3) uint8 panoptic PNG + its segments -> (H, W) uint8 semantic map (255 = unlabelled).

    Raises:
        ValueError: a segment with a category not in ``id_map`` (``where`` names the file).
    """
    pan = rgb2id(np.asarray(pan_rgb))
    out = np.full(pan.shape, 255, dtype=np.uint8)
    for seg in segments_info:
        if seg["category_id"] not in id_map:
            raise ValueError(f"{where}: segment {seg['id']} has unknown category_id {seg['category_id']}")
        out[pan == seg["id"]] = id_map[seg["category_id"]]
    return out


def convert_split(coco_dir: str, split: str) -> int:
    """Write the semantic PNGs of one split; returns how many were written.

    Raises:
        FileNotFoundError: the panoptic json or PNG folder is missing (named).
    """
    json_file = os.path.join(coco_dir, "annotations", f"panoptic_{split}.json")
    pan_dir = os.path.join(coco_dir, f"panoptic_{split}")
    out_dir = os.path.join(coco_dir, f"panoptic_semseg_{split}")
    for path in (json_file, pan_dir):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist: download the COCO panoptic annotations (see datasets/README.md)")
    with open(json_file) as f:
        annotations = json.load(f)["annotations"]
    os.makedirs(out_dir, exist_ok=True)
    id_map = coco_semantic_id_map()
    for ann in tqdm(annotations, desc=split, disable=not sys.stderr.isatty()):
        src = os.path.join(pan_dir, ann["file_name"])
        sem = panoptic_to_semantic(np.asarray(Image.open(src).convert("RGB")), ann["segments_info"], id_map, src)
        Image.fromarray(sem).save(os.path.join(out_dir, ann["file_name"]))
    return len(annotations)


def main(argv=None) -> Dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.getenv("DETECTRON2_DATASETS", "datasets"), help="datasets root")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), help="splits to convert")
    args = parser.parse_args(argv)
    coco_dir = os.path.join(args.root, "coco")
    counts = {split: convert_split(coco_dir, split) for split in args.splits}
    for split, n in counts.items():
        print(f"{split}: wrote {n} semantic PNGs to {os.path.join(coco_dir, 'panoptic_semseg_' + split)}")
    return counts


if __name__ == "__main__":
    main()
