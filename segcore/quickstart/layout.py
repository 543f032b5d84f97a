"""Partitions of an image into a few large regions, one stuff class (or the photograph) each."""
from __future__ import annotations

from typing import Callable, Dict

import cv2
import numpy as np

__all__ = ["LAYOUTS", "register_layout", "smooth_noise", "bands_layout", "voronoi_layout"]

# name -> fn(height, width, num_regions, rng) -> int32 (height, width) region index map
LAYOUTS: Dict[str, Callable[[int, int, int, np.random.Generator], np.ndarray]] = {}

# Boundary waviness: bands move by up to this fraction of a band's height, Voronoi coordinates
# by this fraction of the image's shorter side.
_BAND_WAVE = 0.35
_VORONOI_WARP = 0.12


def register_layout(name: str):
    """Decorator adding a layout function to :data:`LAYOUTS` under ``name``."""

    def wrap(fn):
        if name in LAYOUTS:
            raise KeyError(f"layout {name!r} is already registered")
        LAYOUTS[name] = fn
        return fn

    return wrap


def smooth_noise(height: int, width: int, rng: np.random.Generator, cells: int = 3) -> np.ndarray:
    """Smooth random field: a grid of normal samples (``cells + 1`` per side, one row when
    ``height == 1``) upsampled bicubically.

    Returns:
        float32 (height, width), roughly zero-mean with unit-order amplitude.
    """
    grid_shape = (1 if height == 1 else cells + 1, cells + 1)
    grid = rng.standard_normal(grid_shape).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


@register_layout("bands")
def bands_layout(height: int, width: int, num_regions: int, rng: np.random.Generator) -> np.ndarray:
    """Horizontal bands with wavy borders, top to bottom (index 0 at the top).

    Returns:
        int32 (height, width) with values in [0, num_regions).
    """
    band = height / num_regions
    ys = np.arange(height, dtype=np.float32)[:, None]
    index = np.zeros((height, width), dtype=np.int32)
    for k in range(1, num_regions):
        base = band * (k + rng.uniform(-0.25, 0.25))
        wave = _BAND_WAVE * band * smooth_noise(1, width, rng, cells=int(rng.integers(1, 4)))
        index += (ys >= base + wave).astype(np.int32)
    return index


@register_layout("voronoi")
def voronoi_layout(height: int, width: int, num_regions: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi cells of random seeds, with borders bent by a smooth warp.

    Returns:
        int32 (height, width) with values in [0, num_regions).
    """
    seeds = rng.uniform(0.0, 1.0, size=(num_regions, 2)) * np.float32([width, height])
    warp = _VORONOI_WARP * min(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = xs + warp * smooth_noise(height, width, rng)
    ys = ys + warp * smooth_noise(height, width, rng)
    distances = (xs[None] - seeds[:, 0, None, None]) ** 2 + (ys[None] - seeds[:, 1, None, None]) ** 2
    return np.argmin(distances, axis=0).astype(np.int32)
