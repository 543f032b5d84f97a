"""YouTube-VIS-format video instance segmentation datasets: ``load_ytvis_json``,
``register_ytvis_instances`` and the built-in YouTube-VIS 2019 / 2021 and OVIS splits (the
original Mask2Former's ``mask2former_video/data_video/datasets/{ytvis,builtin}.py``; OVIS under the
names and layout the later video projects use).

Layout under ``$DETECTRON2_DATASETS`` (default ``./datasets``)::

    ytvis_2019/{train,valid,test}.json   ytvis_2019/{train,valid,test}/JPEGImages/<video>/<frame>.jpg
    ytvis_2021/{train,valid,test}.json   ytvis_2021/{train,valid,test}/JPEGImages/<video>/<frame>.jpg
    ovis/annotations/{train,valid,test}.json   ovis/{train,valid,test}/<video>/<frame>.jpg

The json (the YouTube-VIS format, a video variant of COCO's): ``videos`` (``id``, ``width``,
``height``, ``length``, ``file_names``: the frames relative to the image folder),
``annotations`` (one per track: ``id``, ``video_id``, ``category_id``, ``iscrowd``, and per frame
``segmentations`` (RLE, compressed or not, or polygons; null where the object is absent),
``bboxes`` ([x, y, w, h] or null) and ``areas``), ``categories`` (``id``, ``name``). Metadata:
``thing_classes``, ``thing_colors``, ``thing_dataset_id_to_contiguous_id`` (the category table's
ids in order -> 0..K-1), ``json_file``, ``image_root``, ``evaluator_type="ytvis"``.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

from segcore.structures.boxes import BoxMode
from segcore.utils.file_io import PathManager

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories
from .paths import join_root, require_dir, require_file

__all__ = ["YTVIS_SPLITS", "get_ytvis_instances_meta", "load_ytvis_json", "register_all_ytvis",
           "register_ytvis_instances"]

logger = logging.getLogger(__name__)

#: dataset name -> (category table, image folder, json), relative to the datasets root
YTVIS_SPLITS: Dict[str, Tuple[str, str, str]] = {
    "ytvis_2019_train": ("ytvis_2019", "ytvis_2019/train/JPEGImages", "ytvis_2019/train.json"),
    "ytvis_2019_val": ("ytvis_2019", "ytvis_2019/valid/JPEGImages", "ytvis_2019/valid.json"),
    "ytvis_2019_test": ("ytvis_2019", "ytvis_2019/test/JPEGImages", "ytvis_2019/test.json"),
    "ytvis_2021_train": ("ytvis_2021", "ytvis_2021/train/JPEGImages", "ytvis_2021/train.json"),
    "ytvis_2021_val": ("ytvis_2021", "ytvis_2021/valid/JPEGImages", "ytvis_2021/valid.json"),
    "ytvis_2021_test": ("ytvis_2021", "ytvis_2021/test/JPEGImages", "ytvis_2021/test.json"),
    "ovis_train": ("ovis", "ovis/train", "ovis/annotations/train.json"),
    "ovis_val": ("ovis", "ovis/valid", "ovis/annotations/valid.json"),
    "ovis_test": ("ovis", "ovis/test", "ovis/annotations/test.json"),
}


def get_ytvis_instances_meta(table: str) -> dict:
    """Metadata of a video dataset's thing classes from its category table (``ytvis_2019``,
    ``ytvis_2021``, ``ovis``): ``thing_dataset_id_to_contiguous_id`` ({id: 0..K-1} in table order),
    ``thing_classes``, ``thing_colors``.

    Raises:
        KeyError: no such table.
    """
    cats = [c for c in load_categories(table) if c.get("isthing", 1) == 1]
    return {
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
        "thing_classes": [c["name"] for c in cats],
        "thing_colors": [list(c["color"]) for c in cats],
    }


def _segmentation(segm, json_file: str, ann_id):
    """An RLE (uncompressed ones compressed) or the valid polygons (>= 3 points); None if none."""
    import pycocotools.mask as mask_util

    if isinstance(segm, dict):
        if isinstance(segm.get("counts"), list):
            segm = mask_util.frPyObjects(segm, *segm["size"])
        return segm
    if not isinstance(segm, list):
        raise ValueError(f"Annotation {ann_id} in '{json_file}': a segmentation must be polygons or an RLE dict")
    polygons = [p for p in segm if len(p) % 2 == 0 and len(p) >= 6]
    return polygons or None


def load_ytvis_json(json_file: str, image_root: str, dataset_name: Optional[str] = None,
                    extra_annotation_keys: Optional[Sequence[str]] = None) -> List[dict]:
    """Load a YouTube-VIS-format json into video records (the original ``load_ytvis_json``).

    Category ids are mapped to contiguous ids ``{id: i for i, id in enumerate(sorted(json ids))}``;
    with ``dataset_name``, that dataset's metadata gets ``thing_classes`` (the json's names) and
    ``thing_dataset_id_to_contiguous_id``, as the original's (``json_file`` is the registration's). A
    track appears in a frame when it has both a box and a segmentation there; polygons with fewer
    than 3 points are dropped (and the track with them in that frame, logged).

    Args:
        json_file: the YouTube-VIS json. image_root: the folder the videos' ``file_names`` are in.
        dataset_name: a registered name whose metadata is filled in, or None.
        extra_annotation_keys: annotation keys copied besides ``iscrowd``, ``category_id``, ``id``.

    Returns:
        one dict per video (sorted by id): ``file_names`` (T paths), ``height``, ``width``,
        ``length`` (T), ``video_id``, ``annotations``: T lists of ``{"id", "iscrowd", "category_id"
        (contiguous), "bbox" (x, y, w, h pixels), "bbox_mode" (XYWH_ABS), "segmentation"}``.

    Raises:
        FileNotFoundError: the json or the image folder is missing (named).
        ValueError: the json is not in the YouTube-VIS format (the message says what is wrong).
    """
    require_file(json_file, "YouTube-VIS annotation file")
    require_dir(image_root, "YouTube-VIS image")
    with PathManager.open(json_file, "r") as f:
        dataset = json.load(f)
    if not isinstance(dataset, dict) or "videos" not in dataset or "categories" not in dataset:
        raise ValueError(f"'{json_file}' is not a YouTube-VIS json (a dict with 'videos' and 'categories')")
    cat_ids = sorted(c["id"] for c in dataset["categories"])
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    id_map = {cid: i for i, cid in enumerate(cat_ids)}
    if not (min(cat_ids, default=1) == 1 and max(cat_ids, default=0) == len(cat_ids)):
        logger.warning("Category ids in %s are not 1..%d; they are mapped to 0..%d in order", json_file,
                       len(cat_ids), len(cat_ids) - 1)
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        meta.thing_classes = [names[c] for c in cat_ids]
        meta.thing_dataset_id_to_contiguous_id = id_map

    tracks: Dict[int, List[dict]] = {}
    for ann in dataset.get("annotations", []) or []:
        tracks.setdefault(ann["video_id"], []).append(ann)
    ann_keys = ["iscrowd", "category_id", "id"] + list(extra_annotation_keys or [])
    records, dropped = [], 0
    for video in sorted(dataset["videos"], key=lambda v: v["id"]):
        length = int(video.get("length", len(video["file_names"])))
        record = {
            "file_names": [os.path.join(image_root, video["file_names"][i]) for i in range(length)],
            "height": video["height"],
            "width": video["width"],
            "length": length,
            "video_id": video["id"],
        }
        frames: List[List[dict]] = []
        for t in range(length):
            objs = []
            for ann in tracks.get(video["id"], []):
                boxes, segms = ann.get("bboxes"), ann.get("segmentations")
                if not (boxes and segms and boxes[t] and segms[t]):
                    continue
                segm = _segmentation(segms[t], json_file, ann.get("id"))
                if segm is None:
                    dropped += 1
                    continue
                obj = {key: ann[key] for key in ann_keys if key in ann}
                obj.update(bbox=boxes[t], bbox_mode=BoxMode.XYWH_ABS, segmentation=segm)
                if obj["category_id"] not in id_map:
                    raise ValueError(f"Annotation {ann.get('id')} in '{json_file}' has category_id "
                                     f"{obj['category_id']} not listed in its 'categories'")
                obj["category_id"] = id_map[obj["category_id"]]
                objs.append(obj)
            frames.append(objs)
        record["annotations"] = frames
        records.append(record)
    if dropped:
        logger.warning("Filtered out %d track frames without a valid segmentation in %s", dropped, json_file)
    logger.info("Loaded %d videos in YouTube-VIS format from %s", len(records), json_file)
    return records


def register_ytvis_instances(name: str, metadata: dict, json_file: str, image_root: str) -> None:
    """Register a YouTube-VIS-format dataset (the original ``register_ytvis_instances``).

    Sets the metadata ``json_file``, ``image_root``, ``evaluator_type="ytvis"`` plus ``metadata``.
    Lazy: nothing is read until ``DatasetCatalog.get(name)``.

    Raises:
        ValueError: ``name`` is already registered.
    """
    DatasetCatalog.register(name, functools.partial(load_ytvis_json, json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="ytvis", **metadata)


def _load_builtin_ytvis(name: str, image_rel: str, json_rel: str, root: Optional[str]) -> List[dict]:
    return load_ytvis_json(join_root(root, json_rel), join_root(root, image_rel), name)


def register_all_ytvis(root: Optional[str] = None) -> None:
    """Register the YouTube-VIS 2019 / 2021 and OVIS splits (:data:`YTVIS_SPLITS`).

    Args:
        root: datasets root; None resolves ``$DETECTRON2_DATASETS`` each time a dataset loads (the
            metadata paths record the root seen now, and loading records the path it read).
    """
    for name, (table, image_rel, json_rel) in YTVIS_SPLITS.items():
        DatasetCatalog.register(name, functools.partial(_load_builtin_ytvis, name, image_rel, json_rel, root))
        MetadataCatalog.get(name).set(json_file=join_root(root, json_rel), image_root=join_root(root, image_rel),
                                      evaluator_type="ytvis", **get_ytvis_instances_meta(table))
