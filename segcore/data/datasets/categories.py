"""Category tables shipped as package data (``segcore/data/categories/<name>.json``).

Each table is a JSON list of category objects in label order, with the keys of the original
source (for ADE20K-150: ``color`` [r, g, b], ``id``, ``isthing``, ``name``).
"""
from __future__ import annotations

import functools
import json
import os
from typing import List, Optional, Tuple

__all__ = ["CATEGORIES_DIR", "available_category_tables", "load_categories", "panoptic_metadata",
           "stuff_classes_and_colors"]

#: the folder holding the category tables
CATEGORIES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "categories")


def available_category_tables() -> List[str]:
    """Names of the shipped tables (file names without ``.json``)."""
    if not os.path.isdir(CATEGORIES_DIR):
        return []
    return sorted(f[: -len(".json")] for f in os.listdir(CATEGORIES_DIR) if f.endswith(".json"))


@functools.lru_cache(maxsize=None)
def _load_table(name: str) -> Tuple[dict, ...]:
    path = os.path.join(CATEGORIES_DIR, name + ".json")
    if not os.path.isfile(path):
        raise KeyError(f"No category table '{name}' ({path}); available: {available_category_tables()}")
    with open(path, encoding="utf-8") as f:
        try:
            table = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"Category table {path} is not valid JSON: {e}") from e
    if not isinstance(table, list) or not table or not all(isinstance(c, dict) and "name" in c for c in table):
        raise ValueError(f"Category table {path} must be a non-empty JSON list of objects with a 'name'")
    return tuple(table)


def load_categories(name: str) -> List[dict]:
    """The category table ``name`` (e.g. "ade20k_150") as a fresh list of dicts, in label order.

    Raises:
        KeyError: no such table (the message lists the available ones).
        ValueError: the file is not a JSON list of category objects.
    """
    return [dict(c) for c in _load_table(name)]


def stuff_classes_and_colors(categories: List[dict]) -> Tuple[List[str], List[List[int]]]:
    """(names, [r, g, b] colours) of every category, in table order (semantic-segmentation metadata).

    Raises:
        KeyError: a category without "color" (the message names it).
    """
    names = [c["name"] for c in categories]
    colors = []
    for c in categories:
        if "color" not in c:
            raise KeyError(f"Category '{c['name']}' has no 'color'")
        colors.append([int(v) for v in c["color"]])
    return names, colors


def panoptic_metadata(categories: List[dict], *, thing_classes_are_things_only: bool, stuff_ids_cover_things: bool,
                      contiguous_id_key: Optional[str] = None) -> dict:
    """The metadata of a panoptic dataset from its category table (each with "id", "name", "color", "isthing").

    Two conventions exist and both are in use:

    * Detectron2's (COCO "panoptic_standard", Cityscapes): ``thing_classes`` and ``stuff_classes``
      both list every category; ``stuff_dataset_id_to_contiguous_id`` maps the stuff ids only;
    * Mask2Former's (``*_panoptic_with_sem_seg``, ADE20K panoptic): ``thing_classes`` lists the
      things only and ``stuff_dataset_id_to_contiguous_id`` maps every id, so that the semantic
      evaluator covers things too.

    Args:
        categories: the table, in label order.
        thing_classes_are_things_only: ``thing_classes`` / ``thing_colors`` of the things only
            (else of every category).
        stuff_ids_cover_things: ``stuff_dataset_id_to_contiguous_id`` maps every category (else
            the stuff categories only).
        contiguous_id_key: the category field holding the contiguous id (Cityscapes: "trainId");
            None uses the position in the table.

    Returns:
        ``thing_classes``, ``thing_colors``, ``stuff_classes``, ``stuff_colors`` (every category),
        ``thing_dataset_id_to_contiguous_id`` (things) and ``stuff_dataset_id_to_contiguous_id``.

    Raises:
        KeyError: a category lacks "color" or the ``contiguous_id_key`` field.
    """
    names, colors = stuff_classes_and_colors(categories)
    contiguous = [c[contiguous_id_key] if contiguous_id_key else i for i, c in enumerate(categories)]
    is_thing = [bool(c["isthing"]) for c in categories]
    listed_as_thing = is_thing if thing_classes_are_things_only else [True] * len(categories)
    return {
        "thing_classes": [n for n, t in zip(names, listed_as_thing) if t],
        "thing_colors": [list(col) for col, t in zip(colors, listed_as_thing) if t],
        "stuff_classes": names,
        "stuff_colors": colors,
        "thing_dataset_id_to_contiguous_id": {c["id"]: k for c, k, t in zip(categories, contiguous, is_thing) if t},
        "stuff_dataset_id_to_contiguous_id": {c["id"]: k for c, k, t in zip(categories, contiguous, is_thing)
                                              if stuff_ids_cover_things or not t},
    }
