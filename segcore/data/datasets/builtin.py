"""Register the built-in datasets under ``$DETECTRON2_DATASETS`` (default ``./datasets``) on import.

As in Detectron2's ``detectron2/data/datasets/builtin.py``; loading is lazy, so a dataset whose
files are absent only fails when it is used.
"""
from __future__ import annotations

import os

from .ade20k import register_all_ade20k

__all__ = ["register_all_builtin", "get_datasets_root"]


def get_datasets_root() -> str:
    """The datasets folder: ``$DETECTRON2_DATASETS`` or ``datasets`` (relative to the working directory)."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def register_all_builtin(root: str) -> None:
    """Register every built-in dataset with its files under ``root``."""
    register_all_ade20k(root)


if __name__.endswith(".builtin"):
    # importing this module (through ``import segcore.data``) registers the datasets
    register_all_builtin(get_datasets_root())
