"""Outlines of the quickstart thing classes and their exact rasterisation."""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Tuple

import numpy as np
import skimage.draw

__all__ = ["SHAPES", "register_shape", "shape_outline", "shape_mask"]

# A shape is a list of (polygon, filled) pairs around the origin; polygons are drawn in order,
# filled=False cuts a hole. Outlines are rescaled so that every shape covers the area of the
# disc of diameter 1 (so "diameter" means the same amount of pixels for every class).
Outline = List[Tuple[np.ndarray, bool]]
SHAPES: Dict[str, Callable[[], Outline]] = {}

_CIRCLE_VERTICES = 72


def register_shape(name: str):
    """Decorator adding an outline function to :data:`SHAPES` under ``name``."""

    def wrap(fn: Callable[[], Outline]) -> Callable[[], Outline]:
        if name in SHAPES:
            raise KeyError(f"shape {name!r} is already registered")
        SHAPES[name] = fn
        return fn

    return wrap


def _regular_polygon(num_vertices: int, radius: float, phase: float = -math.pi / 2) -> np.ndarray:
    angles = phase + 2 * math.pi * np.arange(num_vertices) / num_vertices
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


@register_shape("disc")
def _disc() -> Outline:
    return [(_regular_polygon(_CIRCLE_VERTICES, 0.5), True)]


@register_shape("square")
def _square() -> Outline:
    return [(_regular_polygon(4, 0.5, phase=math.pi / 4), True)]


@register_shape("triangle")
def _triangle() -> Outline:
    return [(_regular_polygon(3, 0.5), True)]


@register_shape("star")
def _star() -> Outline:
    # five points; the inner radius is half the outer one so that the arms stay thick
    points = _regular_polygon(10, 0.5)
    points[1::2] *= 0.5
    return [(points, True)]


@register_shape("ring")
def _ring() -> Outline:
    # the hole has half the outer diameter: the band is a quarter of the diameter thick
    return [(_regular_polygon(_CIRCLE_VERTICES, 0.5), True), (_regular_polygon(_CIRCLE_VERTICES, 0.25), False)]


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _unit_area_outline(kind: str) -> Outline:
    outline = SHAPES[kind]()
    area = sum(_polygon_area(p) * (1 if filled else -1) for p, filled in outline)
    scale = math.sqrt((math.pi / 4) / area)
    return [(p * scale, filled) for p, filled in outline]


def shape_outline(
    kind: str, center: Tuple[float, float], diameter: float, angle: float = 0.0, aspect: float = 1.0
) -> Outline:
    """The outline of shape ``kind`` placed in an image.

    Args:
        kind: a key of :data:`SHAPES`.
        center: (x, y) in pixels.
        diameter: size in pixels: the shape covers the area of a disc of this diameter.
        angle: rotation in radians (counter-clockwise on screen).
        aspect: width / height stretch; the area is kept (x scaled by sqrt(aspect)).

    Returns:
        list of (polygon float64 (N, 2) in pixel (x, y), filled) pairs.

    Raises:
        KeyError: for an unknown ``kind``.
    """
    if kind not in SHAPES:
        raise KeyError(f"unknown quickstart shape {kind!r}; known: {sorted(SHAPES)}")
    cos, sin = math.cos(angle), math.sin(angle)
    transform = np.array([[cos, sin], [-sin, cos]]) @ np.diag([math.sqrt(aspect), 1 / math.sqrt(aspect)])
    offset = np.asarray(center, dtype=np.float64)
    return [(diameter * points @ transform.T + offset, filled) for points, filled in _unit_area_outline(kind)]


def shape_mask(
    kind: str,
    height: int,
    width: int,
    center: Tuple[float, float],
    diameter: float,
    angle: float = 0.0,
    aspect: float = 1.0,
) -> np.ndarray:
    """Rasterise a shape (no anti-aliasing) into a ``height`` x ``width`` mask: a pixel is in
    when its centre is inside the outline.

    Arguments are those of :func:`shape_outline`; parts outside the image are cut off.

    Returns:
        bool (height, width): True exactly on the pixels that the shape covers.
    """
    mask = np.zeros((height, width), dtype=bool)
    for polygon, filled in shape_outline(kind, center, diameter, angle, aspect):
        # pixel (row i, column j) covers [j, j + 1) x [i, i + 1); it belongs to the polygon when
        # its centre (j + 0.5, i + 0.5) does (skimage samples pixel centres at integers)
        rows, cols = skimage.draw.polygon(polygon[:, 1] - 0.5, polygon[:, 0] - 0.5, shape=(height, width))
        mask[rows, cols] = filled
    return mask
