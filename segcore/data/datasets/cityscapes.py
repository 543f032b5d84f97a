"""Cityscapes semantic and instance segmentation (Detectron2's ``cityscapes.py`` and ``builtin.py``):
``cityscapes_fine_sem_seg_{train,val,test}`` and ``cityscapes_fine_instance_seg_{train,val,test}``.

Layout under ``$DETECTRON2_DATASETS``::

    cityscapes/
      leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
      gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_{labelTrainIds,instanceIds}.png

``*_gtFine_labelTrainIds.png`` are made by cityscapesscripts' ``createTrainIdLabelImgs``
(pixel = trainId 0..18, 255 = ignore). ``*_gtFine_instanceIds.png`` are part of the release
(pixel = label id for regions without instances, ``label id * 1000 + k`` for instance k).

Metadata (Detectron2's ``_get_builtin_metadata("cityscapes")``): ``thing_classes`` (8),
``stuff_classes`` (19, trainId order), ``image_dir``, ``gt_dir``; semantic:
``evaluator_type="cityscapes_sem_seg"``, ``ignore_label=255``; instances:
``evaluator_type="cityscapes_instance"``.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

from segcore.structures.boxes import BoxMode
from segcore.utils.file_io import PathManager

from ..catalog import DatasetCatalog, MetadataCatalog
from .categories import load_categories
from .paths import join_root, require_dir

__all__ = [
    "CITYSCAPES_SPLITS",
    "get_cityscapes_meta",
    "get_cityscapes_files",
    "load_cityscapes_semantic",
    "load_cityscapes_instances",
    "register_all_cityscapes",
]

logger = logging.getLogger(__name__)

#: split -> (image folder, gt folder), relative to the datasets root
CITYSCAPES_SPLITS: Dict[str, tuple] = {
    split: (f"cityscapes/leftImg8bit/{split}/", f"cityscapes/gtFine/{split}/") for split in ("train", "val", "test")
}


def get_cityscapes_meta() -> dict:
    """``thing_classes`` (the 8 ``isthing`` names) and ``stuff_classes`` (all 19, in trainId order)."""
    cats = sorted(load_categories("cityscapes"), key=lambda c: c["trainId"])
    return {
        "thing_classes": [c["name"] for c in cats if c["isthing"] == 1],
        "stuff_classes": [c["name"] for c in cats],
    }


def get_cityscapes_files(image_dir: str, gt_dir: str) -> List[tuple]:
    """(image, instanceIds, labelTrainIds, polygons json) paths of every ``*_leftImg8bit.png``,
    sorted, city by city (as Detectron2's ``_get_cityscapes_files``).

    Raises:
        FileNotFoundError: a folder is missing (named).
        ValueError: no images found.
    """
    require_dir(image_dir, "Cityscapes image")
    require_dir(gt_dir, "Cityscapes gtFine")
    files = []
    for city in sorted(PathManager.ls(image_dir)):
        city_img_dir = os.path.join(image_dir, city)
        if not PathManager.isdir(city_img_dir):
            continue
        city_gt_dir = os.path.join(gt_dir, city)
        suffix = "leftImg8bit.png"
        for basename in sorted(PathManager.ls(city_img_dir)):
            if not basename.endswith(suffix):
                continue
            stem = basename[: -len(suffix)]
            files.append(
                (
                    os.path.join(city_img_dir, basename),
                    os.path.join(city_gt_dir, stem + "gtFine_instanceIds.png"),
                    os.path.join(city_gt_dir, stem + "gtFine_labelTrainIds.png"),
                    os.path.join(city_gt_dir, stem + "gtFine_polygons.json"),
                )
            )
    if not files:
        raise ValueError(f"No '*_leftImg8bit.png' images found in the city folders of '{image_dir}'")
    return files


def load_cityscapes_semantic(image_dir: str, gt_dir: str) -> List[dict]:
    """Cityscapes semantic dataset dicts (as Detectron2's ``load_cityscapes_semantic``).

    Returns:
        list[dict] with "file_name", "sem_seg_file_name" (``*_gtFine_labelTrainIds.png``),
        "height", "width" (pixels, read from the image header).

    Raises:
        FileNotFoundError: a folder or a ``labelTrainIds`` file is missing (the message says how
            to make them).
    """
    ret = []
    for image_file, _, label_file, _ in get_cityscapes_files(image_dir, gt_dir):
        if not PathManager.isfile(label_file):
            raise FileNotFoundError(
                f"'{label_file}' not found. Make the *_gtFine_labelTrainIds.png files with cityscapesscripts' "
                "createTrainIdLabelImgs (see datasets/README.md)."
            )
        with PathManager.open(image_file, "rb") as f:
            width, height = Image.open(f).size
        ret.append({"file_name": image_file, "sem_seg_file_name": label_file, "height": height, "width": width})
    return ret


def _instance_labels() -> Dict[int, int]:
    """{cityscapes label id: contiguous id} of the labels with instances evaluated (ids 24..33
    without caravan 29 and trailer 30 -> 0..7), as Detectron2 builds from cityscapesscripts."""
    cats = sorted(load_categories("cityscapes"), key=lambda c: c["id"])
    return {c["id"]: i for i, c in enumerate(c for c in cats if c["isthing"] == 1)}


def _instance_file_to_dict(image_file: str, instance_file: str, id_map: Dict[int, int]) -> dict:
    import pycocotools.mask as mask_util

    if not PathManager.isfile(instance_file):
        raise FileNotFoundError(f"Cityscapes instance file not found: '{instance_file}' (for '{image_file}')")
    with PathManager.open(instance_file, "rb") as f:
        inst_image = np.asarray(Image.open(f), order="F")
    if inst_image.ndim != 2:
        raise ValueError(f"'{instance_file}' must be a single-channel instanceIds image, got shape {inst_image.shape}")
    annos = []
    for instance_id in np.unique(inst_image[inst_image >= 24]):
        instance_id = int(instance_id)
        label_id = instance_id // 1000 if instance_id >= 1000 else instance_id
        if label_id not in id_map:
            continue
        mask = np.asarray(inst_image == instance_id, dtype=np.uint8, order="F")
        ys, xs = np.nonzero(mask)
        xmin, xmax, ymin, ymax = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
        if xmax <= xmin or ymax <= ymin:
            continue
        annos.append(
            {
                "iscrowd": instance_id < 1000,
                "category_id": id_map[label_id],
                "bbox": [xmin, ymin, xmax, ymax],
                "bbox_mode": BoxMode.XYXY_ABS,
                "segmentation": mask_util.encode(mask[:, :, None])[0],
            }
        )
    return {
        "file_name": image_file,
        "image_id": os.path.basename(image_file),
        "height": inst_image.shape[0],
        "width": inst_image.shape[1],
        "annotations": annos,
    }


def load_cityscapes_instances(image_dir: str, gt_dir: str) -> List[dict]:
    """Cityscapes instance dataset dicts from ``*_gtFine_instanceIds.png`` (Detectron2's
    ``load_cityscapes_instances`` with ``from_json=False``, ``to_polygons=False``).

    Pixel value v >= 1000 is instance ``v % 1000`` of label ``v // 1000``; a value 24..33 is a
    crowd region of that label. Only the 8 evaluated instance labels are kept.

    Returns:
        list[dict] with "file_name", "image_id" (image basename), "height", "width",
        "annotations": {"iscrowd", "category_id" (0..7), "bbox" (x0, y0, x1, y1 pixels, the
        inclusive max as Detectron2), "bbox_mode" (XYXY_ABS), "segmentation" (RLE)}.

    Raises:
        FileNotFoundError: a folder or an instanceIds file is missing (named).
    """
    id_map = _instance_labels()
    ret = [_instance_file_to_dict(img, inst, id_map) for img, inst, _, _ in get_cityscapes_files(image_dir, gt_dir)]
    logger.info("Loaded %d images from %s", len(ret), image_dir)
    return ret


def _load_builtin(fn, image_rel: str, gt_rel: str, root: Optional[str]) -> List[dict]:
    return fn(join_root(root, image_rel), join_root(root, gt_rel))


def register_all_cityscapes(root: Optional[str] = None) -> None:
    """Register ``cityscapes_fine_{instance_seg,sem_seg}_{train,val,test}``
    (``root=None``: ``$DETECTRON2_DATASETS`` read at load time)."""
    meta = get_cityscapes_meta()
    for split, (image_rel, gt_rel) in CITYSCAPES_SPLITS.items():
        paths = dict(image_dir=join_root(root, image_rel), gt_dir=join_root(root, gt_rel))
        inst_name = f"cityscapes_fine_instance_seg_{split}"
        DatasetCatalog.register(
            inst_name, functools.partial(_load_builtin, load_cityscapes_instances, image_rel, gt_rel, root)
        )
        MetadataCatalog.get(inst_name).set(evaluator_type="cityscapes_instance", **paths, **meta)
        sem_name = f"cityscapes_fine_sem_seg_{split}"
        DatasetCatalog.register(
            sem_name, functools.partial(_load_builtin, load_cityscapes_semantic, image_rel, gt_rel, root)
        )
        MetadataCatalog.get(sem_name).set(evaluator_type="cityscapes_sem_seg", ignore_label=255, **paths, **meta)
