"""The quickstart category table (``segcore/data/categories/quickstart.json``)."""
from __future__ import annotations

from typing import List

from segcore.data.datasets.categories import load_categories

__all__ = ["QUICKSTART_TABLE", "load_quickstart_categories"]

QUICKSTART_TABLE = "quickstart"  # segcore/data/categories/quickstart.json
_REQUIRED_KEYS = ("color", "id", "isthing", "name")


def load_quickstart_categories() -> List[dict]:
    """The quickstart categories, in label order, checked for use as label-map values.

    Each entry is ``{"color": [r, g, b], "id": i, "isthing": 0/1, "name": str}`` (the shape of
    ``ade20k_150.json``); ``id`` is the value written into the label maps, so ids must be
    ``0..K-1`` in file order.

    Returns:
        a new list of new dicts (callers may modify them).

    Raises:
        ValueError: an entry lacks a key, has a bad colour / isthing, ids are not contiguous,
            names repeat, or there are 255 or more classes (255 is the ignore label).
    """
    where = f"segcore/data/categories/{QUICKSTART_TABLE}.json"
    table = load_categories(QUICKSTART_TABLE)
    for index, entry in enumerate(table):
        missing = [k for k in _REQUIRED_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where}: entry {index} lacks the key(s) {missing}")
        if entry["id"] != index:
            raise ValueError(
                f"{where}: entry {index} ({entry['name']!r}) has id {entry['id']}; ids must be the "
                "contiguous indices 0..K-1 in file order (they are the label-map values)"
            )
        color = entry["color"]
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise ValueError(f"{where}: entry {index} ({entry['name']!r}) has a bad color {color}")
        if entry["isthing"] not in (0, 1):
            raise ValueError(f"{where}: entry {index} ({entry['name']!r}) has isthing={entry['isthing']}")
    if len(table) >= 255:
        raise ValueError(f"{where}: {len(table)} categories do not fit below the ignore label 255")
    names = [entry["name"] for entry in table]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: category names are not unique: {names}")
    return table
