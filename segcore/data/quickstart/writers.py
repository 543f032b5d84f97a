"""Writers turning :class:`~segcore.data.quickstart.scene.SceneRecord` s into on-disk datasets.

A writer has ``write(record)`` (called once per image) and ``close()`` (called once after the
last image, e.g. to write a JSON index) and reports what it made through ``summary()``.
Further formats (COCO panoptic, COCO instances) are added as further writers fed with the same
records: every record carries its segments with ids, classes and exact masks.
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
from PIL import Image

from .scene import IGNORE_LABEL, SceneRecord

__all__ = ["ADE_SPLITS", "ade_file_stem", "ADESemSegWriter"]

# ADE20K folder name of a split -> the word used in its file names (ADE_train_00000001.jpg).
ADE_SPLITS: Dict[str, str] = {"training": "train", "validation": "val"}
# High quality and no chroma subsampling (4:4:4) keep colour edges at object borders sharp.
JPEG_QUALITY = 95
JPEG_SUBSAMPLING = 0


def ade_file_stem(split: str, index: int) -> str:
    """ADE20K file name without extension, e.g. ``ADE_train_00000001`` (``index`` is 1-based).

    Raises:
        KeyError: for a split other than "training" / "validation".
    """
    if split not in ADE_SPLITS:
        raise KeyError(f"unknown ADE20K split {split!r}; expected one of {sorted(ADE_SPLITS)}")
    return f"ADE_{ADE_SPLITS[split]}_{index:08d}"


class ADESemSegWriter:
    """Writes the ADE20K (SceneParsing, ``ADEChallengeData2016``) semantic layout::

        <dataset_dir>/images/{training,validation}/ADE_{train,val}_%08d.jpg
        <dataset_dir>/annotations/{training,validation}/ADE_{train,val}_%08d.png
            uint8, class id + 1, 0 = unlabelled (the original release)
        <dataset_dir>/annotations_detectron2/{training,validation}/ADE_{train,val}_%08d.png
            uint8, class id, 255 = unlabelled (what Detectron2's prepare_ade20k_sem_seg.py makes)
    """

    def __init__(self, dataset_dir: str):
        self.dataset_dir = dataset_dir
        self._counts: Dict[str, int] = {}
        self._pixels: Dict[str, np.ndarray] = {}

    def image_root(self, split: str) -> str:
        return os.path.join(self.dataset_dir, "images", split)

    def sem_seg_root(self, split: str) -> str:
        return os.path.join(self.dataset_dir, "annotations_detectron2", split)

    def raw_annotation_root(self, split: str) -> str:
        return os.path.join(self.dataset_dir, "annotations", split)

    def write(self, record: SceneRecord) -> None:
        """Write the image and both label maps of ``record``."""
        stem = ade_file_stem(record.split, record.index)
        label = record.sem_seg(IGNORE_LABEL)
        raw = np.where(label == IGNORE_LABEL, 0, label.astype(np.int32) + 1).astype(np.uint8)
        outputs = [
            (self.image_root(record.split), ".jpg", record.image),
            (self.raw_annotation_root(record.split), ".png", raw),
            (self.sem_seg_root(record.split), ".png", label),
        ]
        for folder, ext, array in outputs:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, stem + ext)
            if ext == ".jpg":
                Image.fromarray(array).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
            else:
                Image.fromarray(array).save(path, format="PNG")
        self._counts[record.split] = self._counts.get(record.split, 0) + 1
        histogram = np.bincount(label.ravel(), minlength=256).astype(np.int64)
        self._pixels[record.split] = self._pixels.get(record.split, 0) + histogram

    def close(self) -> None:
        """Nothing to finish: every file is complete after ``write``."""

    def summary(self, class_names: List[str]) -> Dict[str, dict]:
        """Per split: folders, number of images, labelled pixels per class name."""
        out = {}
        for split, count in self._counts.items():
            pixels = self._pixels[split]
            out[split] = {
                "image_root": self.image_root(split),
                "sem_seg_root": self.sem_seg_root(split),
                "raw_annotation_root": self.raw_annotation_root(split),
                "num_images": count,
                "class_pixels": {name: int(pixels[i]) for i, name in enumerate(class_names)},
                "unlabelled_pixels": int(pixels[IGNORE_LABEL]),
            }
        return out
