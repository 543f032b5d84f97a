"""A fixed palette of distinct colours for drawing classes and instances.

Same functions and signatures as Detectron2's ``detectron2/utils/colormap.py``
(``colormap``, ``random_color``, ``random_colors``); the palette itself is generated here: hues
step by the golden ratio around the HSV wheel (so neighbouring indices differ strongly) while
saturation and value cycle through three levels (so that hues that come back round still differ).
"""
from __future__ import annotations

import colorsys
from typing import Optional

import numpy as np

__all__ = ["NUM_COLORS", "class_color", "colormap", "random_color", "random_colors"]

#: Number of distinct colours in the palette; indices wrap around beyond it.
NUM_COLORS = 80

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895
_SATURATIONS = (0.90, 0.60, 0.75)
_VALUES = (0.95, 0.80, 0.65)


def _build_palette(n: int) -> np.ndarray:
    """(n, 3) float32 RGB colours in [0, 1]."""
    colors = []
    for i in range(n):
        hue = (i * _GOLDEN_RATIO_CONJUGATE) % 1.0
        sat = _SATURATIONS[i % len(_SATURATIONS)]
        val = _VALUES[(i // len(_SATURATIONS)) % len(_VALUES)]
        colors.append(colorsys.hsv_to_rgb(hue, sat, val))
    return np.asarray(colors, dtype=np.float32)


_PALETTE_RGB = _build_palette(NUM_COLORS)


def colormap(rgb: bool = False, maximum: float = 255) -> np.ndarray:
    """The whole palette.

    Args:
        rgb: channel order of the result: RGB if True, BGR (OpenCV's order) if False, as in
            Detectron2's ``colormap``.
        maximum: value of a full channel (255 for uint8 images, 1 for matplotlib).

    Returns:
        float32 array of shape (NUM_COLORS, 3), values in [0, maximum].
    """
    c = _PALETTE_RGB * maximum
    return c if rgb else c[:, ::-1].copy()


def class_color(index: int, rgb: bool = True, maximum: float = 255) -> np.ndarray:
    """The palette colour for a class or segment index (wraps around every NUM_COLORS).

    Returns:
        float32 array of shape (3,), in RGB order unless ``rgb`` is False.
    """
    return colormap(rgb=rgb, maximum=maximum)[int(index) % NUM_COLORS]


def random_color(rgb: bool = False, maximum: float = 255, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """One palette colour picked at random (``rng``, or NumPy's global generator).

    Returns:
        float32 array of shape (3,), values in [0, maximum].
    """
    idx = rng.integers(NUM_COLORS) if rng is not None else np.random.randint(0, NUM_COLORS)
    return colormap(rgb=rgb, maximum=maximum)[idx]


def random_colors(N: int, rgb: bool = False, maximum: float = 255,
                  rng: Optional[np.random.Generator] = None) -> list:
    """``N`` palette colours, distinct while ``N <= NUM_COLORS`` (random order).

    Returns:
        list of N float32 arrays of shape (3,), values in [0, maximum].
    """
    perm = rng.permutation(NUM_COLORS) if rng is not None else np.random.permutation(NUM_COLORS)
    cmap = colormap(rgb=rgb, maximum=maximum)
    return [cmap[perm[i % NUM_COLORS]] for i in range(N)]
