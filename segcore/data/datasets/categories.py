"""Category tables shipped as package data (``segcore/data/categories/<name>.json``).

Each table is a JSON list of category objects in label order, with the keys of the original
source (for ADE20K-150: ``color`` [r, g, b], ``id``, ``isthing``, ``name``).
"""
from __future__ import annotations

import functools
import json
import os
from typing import List, Tuple

__all__ = ["CATEGORIES_DIR", "available_category_tables", "load_categories", "stuff_classes_and_colors"]

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
