"""COCO panoptic PNG ids: ``rgb2id`` / ``id2rgb`` and ``IdGenerator`` (as in ``panopticapi.utils``).

A panoptic PNG stores segment id ``R + 256 * G + 256**2 * B`` in each pixel; 0 is void.
"""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

import numpy as np

__all__ = ["IdGenerator", "id2rgb", "rgb2id"]


def rgb2id(color: np.ndarray) -> np.ndarray:
    """Segment ids of an (H, W, 3) RGB panoptic image (uint8) -> (H, W) int64; or of one [r, g, b] -> int."""
    if isinstance(color, np.ndarray) and color.ndim == 3:
        if color.shape[2] < 3:
            raise ValueError(f"rgb2id needs an (H, W, 3) image, got shape {color.shape}")
        color = color[..., :3].astype(np.int64)
        return color[..., 0] + 256 * color[..., 1] + 256 * 256 * color[..., 2]
    return int(color[0]) + 256 * int(color[1]) + 256 * 256 * int(color[2])


def id2rgb(id_map):
    """Inverse of :func:`rgb2id`: (H, W) ids -> (H, W, 3) uint8, or one int -> [r, g, b]."""
    if isinstance(id_map, np.ndarray):
        id_map = id_map.astype(np.int64)
        rgb = np.zeros(id_map.shape + (3,), dtype=np.uint8)
        for i in range(3):
            rgb[..., i] = id_map % 256
            id_map = id_map // 256
        return rgb
    color = []
    for _ in range(3):
        color.append(int(id_map % 256))
        id_map //= 256
    return color


class IdGenerator:
    """Unique segment ids (colours) per image, as ``panopticapi.utils.IdGenerator``.

    A stuff category always gets its own colour; a thing gets its category colour the first
    time and a random nearby unused colour afterwards.

    Args:
        categories: {category id: {"color": [r, g, b], "isthing": 0/1, ...}}.
        seed: seed of the jitter of repeated thing colours (panopticapi uses the global RNG).
    """

    def __init__(self, categories: Dict[int, dict], seed: int = 0):
        self.categories = categories
        self.taken_colors: Set[Tuple[int, int, int]] = {(0, 0, 0)}
        self._rng = np.random.RandomState(seed)

    def get_color(self, cat_id: int) -> List[int]:
        """A colour not used yet in this image for a segment of ``cat_id`` (KeyError if unknown)."""
        if cat_id not in self.categories:
            raise KeyError(f"IdGenerator: unknown category id {cat_id}")
        category = self.categories[cat_id]
        base = tuple(int(c) for c in category["color"])
        if not category["isthing"]:
            return list(base)
        if base not in self.taken_colors:
            self.taken_colors.add(base)
            return list(base)
        while True:
            color = tuple(int(v) for v in np.clip(np.array(base) + self._rng.randint(-30, 31, size=3), 0, 255))
            if color not in self.taken_colors:
                self.taken_colors.add(color)
                return list(color)

    def get_id(self, cat_id: int) -> int:
        """The segment id of a new segment of ``cat_id``."""
        return rgb2id(self.get_color(cat_id))

    def get_id_and_color(self, cat_id: int) -> Tuple[int, List[int]]:
        """(segment id, [r, g, b]) of a new segment of ``cat_id``."""
        color = self.get_color(cat_id)
        return rgb2id(color), color
