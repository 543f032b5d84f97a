"""Where the built-in datasets live: ``$DETECTRON2_DATASETS`` (default ``./datasets``), read when used.

Built-in registrations keep paths *relative* to the datasets root and join them with the root
only when a dataset is loaded, so ``DETECTRON2_DATASETS`` may be set after ``import segcore``.
"""
from __future__ import annotations

import functools
import os
from typing import List, Optional

from segcore.utils.file_io import PathManager

from ..catalog import DatasetCatalog, MetadataCatalog
from .sem_seg import DATASET_LAYOUT_HINT, load_sem_seg

__all__ = [
    "datasets_root",
    "join_root",
    "load_sem_seg_under_root",
    "register_root_relative_sem_seg",
    "require_dir",
    "require_file",
]


def datasets_root() -> str:
    """The datasets folder now: ``$DETECTRON2_DATASETS`` or ``datasets`` (relative to the working directory)."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def join_root(root: Optional[str], relpath: str) -> str:
    """``relpath`` under ``root``; ``root=None`` reads ``$DETECTRON2_DATASETS`` now.

    A path with a scheme (``"s3://..."``, ``"detectron2://..."``) is returned unchanged.
    """
    if "://" in relpath:
        return relpath
    return os.path.join(datasets_root() if root is None else root, relpath)


def require_dir(path: str, what: str) -> str:
    """``path`` if it is a folder, else FileNotFoundError naming ``what`` and the path."""
    if not PathManager.isdir(path):
        raise FileNotFoundError(f"{what} folder not found: '{path}'. {DATASET_LAYOUT_HINT}")
    return path


def require_file(path: str, what: str) -> str:
    """``path`` if it is a file, else FileNotFoundError naming ``what`` and the path."""
    if not PathManager.isfile(path):
        raise FileNotFoundError(f"{what} not found: '{path}'. {DATASET_LAYOUT_HINT}")
    return path


def load_sem_seg_under_root(
    image_rel: str, gt_rel: str, root: Optional[str], gt_ext: str = "png", image_ext: str = "jpg"
) -> List[dict]:
    """:func:`~segcore.data.datasets.sem_seg.load_sem_seg` of two folders relative to the datasets root
    (``root=None``: ``$DETECTRON2_DATASETS`` read now). Errors as ``load_sem_seg``."""
    return load_sem_seg(join_root(root, gt_rel), join_root(root, image_rel), gt_ext=gt_ext, image_ext=image_ext)


def register_root_relative_sem_seg(
    name: str,
    image_rel: str,
    gt_rel: str,
    root: Optional[str],
    metadata: dict,
    gt_ext: str = "png",
    image_ext: str = "jpg",
) -> None:
    """Register a semantic-segmentation dataset whose folders are relative to the datasets root.

    The loader resolves the root when it runs; the metadata gets ``image_root`` and
    ``sem_seg_root`` (resolved now) plus ``metadata``.

    Raises:
        ValueError: ``name`` is already registered.
    """
    DatasetCatalog.register(
        name, functools.partial(load_sem_seg_under_root, image_rel, gt_rel, root, gt_ext=gt_ext, image_ext=image_ext)
    )
    MetadataCatalog.get(name).set(image_root=join_root(root, image_rel), sem_seg_root=join_root(root, gt_rel), **metadata)
