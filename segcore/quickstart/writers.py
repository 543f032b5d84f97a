"""Writers turning :class:`~segcore.quickstart.scene.SceneRecord` s into on-disk datasets.

A writer has ``write(record)`` (called once per image) and ``close()`` (called once after the
last image, e.g. to write a JSON index) and reports what it made through ``summary()``.
:class:`ADESemSegWriter` writes the ADE20K semantic layout; :class:`COCOPanopticWriter` the COCO
panoptic and COCO instance formats of the same images (every record carries its segments with
ids, classes and exact masks).
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
from PIL import Image

from segcore.data.datasets.panoptic_ids import id2rgb
from segcore.data.datasets.quickstart import IGNORE_LABEL

from .scene import SceneRecord

__all__ = ["ADE_SPLITS", "ade_file_stem", "ADESemSegWriter", "COCOPanopticWriter"]

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
        """The folder of a split's images."""
        return os.path.join(self.dataset_dir, "images", split)

    def sem_seg_root(self, split: str) -> str:
        """The folder of a split's Detectron2 label maps (class id, 255 = unlabelled)."""
        return os.path.join(self.dataset_dir, "annotations_detectron2", split)

    def raw_annotation_root(self, split: str) -> str:
        """The folder of a split's label maps in the original release's values (class id + 1, 0 = unlabelled)."""
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


class COCOPanopticWriter:
    """Writes the COCO panoptic format, in the layout of ADE20K's panoptic release::

        <dataset_dir>/quickstart_panoptic_{train,val}/ADE_*.png   segment ids as RGB (0 = void)
        <dataset_dir>/quickstart_panoptic_{train,val}.json        images, annotations (segments_info), categories
        <dataset_dir>/quickstart_instance_{train,val}.json        COCO instances (things, RLE masks)

    Category ids equal the contiguous ids of the table (as ADE20K's panoptic json); every stuff
    region and every visible object is one segment. The JSON files are written in ``close()``.
    """

    def __init__(self, dataset_dir: str, categories: List[dict]):
        self.dataset_dir = dataset_dir
        self.categories = categories
        self._panoptic: Dict[str, dict] = {}
        self._instances: Dict[str, dict] = {}

    def panoptic_root(self, split: str) -> str:
        """The folder of a split's panoptic PNGs."""
        return os.path.join(self.dataset_dir, f"quickstart_panoptic_{ADE_SPLITS[split]}")

    def panoptic_json(self, split: str) -> str:
        """The COCO panoptic JSON file of a split."""
        return os.path.join(self.dataset_dir, f"quickstart_panoptic_{ADE_SPLITS[split]}.json")

    def instance_json(self, split: str) -> str:
        """The COCO instances JSON file of a split."""
        return os.path.join(self.dataset_dir, f"quickstart_instance_{ADE_SPLITS[split]}.json")

    def _categories(self, things_only: bool) -> List[dict]:
        return [{"id": c["id"], "name": c["name"], "isthing": c["isthing"], "color": c["color"],
                 "supercategory": "thing" if c["isthing"] else "stuff"}
                for c in self.categories if c["isthing"] or not things_only]

    def write(self, record: SceneRecord) -> None:
        """Write the panoptic PNG of ``record`` and remember its JSON entries."""
        from pycocotools import mask as mask_util

        stem = ade_file_stem(record.split, record.index)
        ids = np.zeros((record.height, record.width), dtype=np.uint32)
        pan = self._panoptic.setdefault(record.split, {"images": [], "annotations": [],
                                                       "categories": self._categories(False)})
        ins = self._instances.setdefault(record.split, {"images": [], "annotations": [],
                                                        "categories": self._categories(True)})
        image = {"id": stem, "file_name": stem + ".jpg", "width": record.width, "height": record.height}
        pan["images"].append(image)
        ins["images"].append(dict(image))
        segments_info = []
        for seg in record.segments:
            if seg.area == 0:
                continue
            ids[seg.mask] = seg.id
            segments_info.append({"id": int(seg.id), "category_id": int(seg.category_id), "area": seg.area,
                                  "bbox": [int(v) for v in seg.bbox], "iscrowd": 0})
            if seg.isthing:
                rle = mask_util.encode(np.asfortranarray(seg.mask.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                ins["annotations"].append({"id": len(ins["annotations"]) + 1, "image_id": stem,
                                           "category_id": int(seg.category_id), "segmentation": rle,
                                           "area": seg.area, "bbox": [int(v) for v in seg.bbox], "iscrowd": 0})
        pan["annotations"].append({"image_id": stem, "file_name": stem + ".png", "segments_info": segments_info})
        os.makedirs(self.panoptic_root(record.split), exist_ok=True)
        Image.fromarray(id2rgb(ids)).save(os.path.join(self.panoptic_root(record.split), stem + ".png"), format="PNG")

    def close(self) -> None:
        """Write the panoptic and instance JSON files of every split seen."""
        import json

        for split in self._panoptic:
            for path, content in ((self.panoptic_json(split), self._panoptic[split]),
                                  (self.instance_json(split), self._instances[split])):
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(content, f)
