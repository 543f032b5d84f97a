"""Semantic-segmentation datasets stored as image files plus label PNGs (Detectron2's ``load_sem_seg``)."""
from __future__ import annotations

import functools
import logging
import os
from typing import Dict, List, Optional, Sequence

from segcore.utils.file_io import PathManager

from ..catalog import DatasetCatalog, MetadataCatalog

__all__ = ["DATASET_LAYOUT_HINT", "load_sem_seg", "register_sem_seg_dataset"]

logger = logging.getLogger(__name__)

#: what to tell a user whose dataset folder is missing
DATASET_LAYOUT_HINT = (
    "Datasets are looked up under $DETECTRON2_DATASETS (default: ./datasets); "
    "datasets/README.md describes the expected folder layout."
)


def _files_by_id(folder: str, ext: str) -> Dict[str, str]:
    """{file stem: path} of the files in ``folder`` ending with ``ext``."""
    ids = {}
    for f in PathManager.ls(folder):
        if f.endswith(ext):
            path = os.path.join(folder, f)
            ids[os.path.splitext(os.path.normpath(os.path.relpath(path, start=folder)))[0]] = path
    return ids


def _list_names(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(f"'{x}'" for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def load_sem_seg(gt_root: str, image_root: str, gt_ext: str = "png", image_ext: str = "jpg") -> List[dict]:
    """Pair the images of ``image_root`` with the label images of ``gt_root`` by file stem.

    As Detectron2's ``load_sem_seg``: ``<image_root>/x.jpg`` goes with ``<gt_root>/x.png``; each
    label image holds one class id per pixel (255 usually means "ignore"). Unlike Detectron2,
    an image without a label image is an error rather than silently dropped; label images
    without an image are skipped with a warning.

    Args:
        gt_root: folder of label images.
        image_root: folder of images.
        gt_ext, image_ext: file extensions (without or with the dot).

    Returns:
        list[dict], sorted by file stem, each with "file_name" (image path) and
        "sem_seg_file_name" (label path).

    Raises:
        FileNotFoundError: a folder does not exist (the message names it and says where
            datasets are expected).
        ValueError: no images in ``image_root``, or images without a label image (named).
    """
    for what, folder in (("Image", image_root), ("Annotation", gt_root)):
        if not PathManager.isdir(folder):
            raise FileNotFoundError(f"{what} folder not found: '{folder}'. {DATASET_LAYOUT_HINT}")
    images = _files_by_id(image_root, image_ext)
    gts = _files_by_id(gt_root, gt_ext)
    if not images:
        raise ValueError(f"No '*{image_ext}' images found in '{image_root}'. {DATASET_LAYOUT_HINT}")
    missing = sorted(set(images) - set(gts))
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(images)} images in '{image_root}' have no '*{gt_ext}' annotation in '{gt_root}': "
            f"{_list_names([images[k] for k in missing])}"
        )
    extra = sorted(set(gts) - set(images))
    if extra:
        logger.warning(
            "%d annotations in '%s' have no image in '%s' and are skipped: %s",
            len(extra), gt_root, image_root, _list_names(extra),
        )
    dataset_dicts = [{"file_name": images[k], "sem_seg_file_name": gts[k]} for k in sorted(images)]
    logger.info("Loaded %d images with semantic segmentation from %s", len(dataset_dicts), image_root)
    return dataset_dicts


def register_sem_seg_dataset(
    name: str,
    image_root: str,
    gt_root: str,
    stuff_classes: Sequence[str],
    stuff_colors: Optional[Sequence[Sequence[int]]] = None,
    ignore_label: int = 255,
    evaluator_type: str = "sem_seg",
    image_ext: str = "jpg",
    gt_ext: str = "png",
    **extra_metadata,
) -> None:
    """Register a :func:`load_sem_seg` dataset and its metadata under ``name``.

    Registration is lazy: the folders are listed only when ``DatasetCatalog.get(name)`` runs.

    Args:
        name: the dataset name (e.g. "ade20k_sem_seg_train").
        image_root, gt_root: folders of images and of label images.
        stuff_classes: class names; label k is ``stuff_classes[k]``.
        stuff_colors: [r, g, b] per class (for visualization), or None.
        ignore_label: label value not trained or evaluated.
        evaluator_type: the evaluator this dataset uses ("sem_seg").
        image_ext, gt_ext: file extensions.
        extra_metadata: more metadata keys to set.

    Raises:
        ValueError: ``name`` is already registered, or stuff_colors has a different length.
    """
    stuff_classes = list(stuff_classes)
    if stuff_colors is not None and len(stuff_colors) != len(stuff_classes):
        raise ValueError(
            f"register_sem_seg_dataset('{name}'): {len(stuff_colors)} stuff_colors for {len(stuff_classes)} stuff_classes"
        )
    DatasetCatalog.register(
        name, functools.partial(load_sem_seg, gt_root, image_root, gt_ext=gt_ext, image_ext=image_ext)
    )
    metadata = dict(
        stuff_classes=stuff_classes,
        image_root=image_root,
        sem_seg_root=gt_root,
        evaluator_type=evaluator_type,
        ignore_label=ignore_label,
        **extra_metadata,
    )
    if stuff_colors is not None:
        metadata["stuff_colors"] = [list(c) for c in stuff_colors]
    MetadataCatalog.get(name).set(**metadata)
