"""Deterministic transforms on numpy images and label maps.

The base classes come from fvcore (``Transform``, ``TransformList``, ``HFlipTransform``,
``VFlipTransform``, ``NoOpTransform``, ``PadTransform``, ``BlendTransform``), exactly as Detectron2
uses them (fvcore's ``PadTransform(x0, y0, x1, y1, orig_w, orig_h, pad_value, seg_pad_value)`` pads
images with ``pad_value`` and label maps with ``seg_pad_value``); this module adds ``ResizeTransform`` (Detectron2's
``detectron2/data/transforms/transform.py``) and a ``CropTransform`` that crops polygons without
shapely.

Geometry follows Detectron2: coordinates are (x, y) in pixels, an (H, W) image spans [0, W] x
[0, H]; ``apply_coords`` maps (N, 2) float arrays (in place for fvcore's transforms),
``apply_polygons`` maps a list of (K, 2) arrays.
"""
from __future__ import annotations

from typing import List

import numpy as np
import torch
from fvcore.transforms.transform import CropTransform as _FvcoreCropTransform
from fvcore.transforms.transform import (
    BlendTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    Transform,
    TransformList,
    VFlipTransform,
)
from PIL import Image
from torch.nn import functional as F

__all__ = [
    "BlendTransform",
    "CropTransform",
    "HFlipTransform",
    "NoOpTransform",
    "PadTransform",
    "ResizeTransform",
    "Transform",
    "TransformList",
    "VFlipTransform",
]

# PIL resampling filter -> torch.nn.functional.interpolate mode, for non-uint8 arrays
_PIL_TO_TORCH_MODE = {
    Image.Resampling.NEAREST: "nearest",
    Image.Resampling.BILINEAR: "bilinear",
    Image.Resampling.BICUBIC: "bicubic",
}


class ResizeTransform(Transform):
    """Resize an (H, W) or (H, W, C) array to (new_h, new_w) (Detectron2 ``ResizeTransform``).

    uint8 arrays are resized with PIL; other dtypes (float label maps, float images) with
    ``torch.nn.functional.interpolate`` (``align_corners=False``), as in Detectron2. Images use
    ``interp`` (bilinear by default), label maps always nearest neighbour.
    """

    def __init__(self, h: int, w: int, new_h: int, new_w: int, interp: int | None = None):
        """
        Args:
            h, w: input size in pixels.
            new_h, new_w: output size in pixels.
            interp: a PIL resampling filter (``PIL.Image.Resampling``); default bilinear.

        Raises:
            ValueError: an output size below one pixel.
        """
        super().__init__()
        if new_h < 1 or new_w < 1:
            raise ValueError(f"ResizeTransform: the output size must be at least 1x1 pixel; got {new_h}x{new_w}")
        if interp is None:
            interp = Image.Resampling.BILINEAR
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray, interp: int | None = None) -> np.ndarray:
        """Resize (H, W) or (H, W, C) ``img``; returns (new_h, new_w[, C]) of the same dtype.

        Raises:
            ValueError: ``img`` is not (h, w[, C]) as declared at construction.
        """
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(
                f"ResizeTransform made for a {self.h}x{self.w} image was applied to an array of shape {img.shape}"
            )
        if img.ndim > 3:
            raise ValueError(f"ResizeTransform takes (H, W) or (H, W, C) arrays; got shape {img.shape}")
        interp_method = interp if interp is not None else self.interp
        if img.dtype == np.uint8:
            if img.ndim > 2 and img.shape[2] == 1:
                pil_image = Image.fromarray(img[:, :, 0], mode="L")
            else:
                pil_image = Image.fromarray(np.ascontiguousarray(img))
            ret = np.asarray(pil_image.resize((self.new_w, self.new_h), interp_method))
            if img.ndim > 2 and img.shape[2] == 1:
                ret = np.expand_dims(ret, -1)
            return ret
        # PIL resizes only uint8 arrays of these shapes: use torch for the rest
        tensor = torch.from_numpy(np.ascontiguousarray(img))
        shape = list(tensor.shape)
        shape_4d = shape[:2] + [1] * (4 - len(shape)) + shape[2:]
        tensor = tensor.view(shape_4d).permute(2, 3, 0, 1)  # hw(c) -> nchw
        mode = _PIL_TO_TORCH_MODE[interp_method]
        align_corners = None if mode == "nearest" else False
        tensor = F.interpolate(tensor, (self.new_h, self.new_w), mode=mode, align_corners=align_corners)
        shape[:2] = (self.new_h, self.new_w)
        return tensor.permute(2, 3, 0, 1).reshape(shape).numpy()  # nchw -> hw(c)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Scale (N, 2) float (x, y) coordinates in place and return them."""
        coords[:, 0] = coords[:, 0] * (self.new_w * 1.0 / self.w)
        coords[:, 1] = coords[:, 1] * (self.new_h * 1.0 / self.h)
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Resize an (H, W) label map with nearest-neighbour interpolation."""
        return self.apply_image(segmentation, interp=Image.Resampling.NEAREST)

    def inverse(self) -> "ResizeTransform":
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


def _clip_polygon_to_box(poly: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clip a (K, 2) polygon to the box [x0, x1] x [y0, y1] (Sutherland-Hodgman).

    The box is convex, so the result covers exactly the part of the polygon inside it (a
    concave polygon cut in several pieces comes back as one outline joined by zero-width edges,
    which rasterizes to the same pixels). Returns an (M, 2) array, M may be 0.
    """
    # each edge of the box: (axis, bound, keep-if-greater)
    edges = ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False))
    pts = poly
    for axis, bound, keep_greater in edges:
        if len(pts) == 0:
            break
        prev = np.roll(pts, 1, axis=0)
        inside = pts[:, axis] >= bound if keep_greater else pts[:, axis] <= bound
        prev_inside = np.roll(inside, 1)
        out: List[np.ndarray] = []
        for cur_p, prev_p, cur_in, prev_in in zip(pts, prev, inside, prev_inside):
            if cur_in != prev_in:
                # the edge prev -> cur crosses the line: add the crossing point
                t = (bound - prev_p[axis]) / (cur_p[axis] - prev_p[axis])
                out.append(prev_p + t * (cur_p - prev_p))
            if cur_in:
                out.append(cur_p)
        pts = np.asarray(out, dtype=np.float64).reshape(-1, 2)
    if len(pts) > 1:
        # drop repeated consecutive vertices (from corners and zero-length edges)
        keep = np.any(np.abs(pts - np.roll(pts, 1, axis=0)) > 1e-9, axis=1)
        pts = pts[keep]
    return pts


class CropTransform(_FvcoreCropTransform):
    """Crop ``img[y0:y0+h, x0:x0+w]`` (fvcore / Detectron2 ``CropTransform``).

    Images, label maps and coordinates behave as fvcore's. ``apply_polygons`` clips each polygon
    to the crop window as fvcore does, but without needing shapely: pieces outside the window
    are removed, and a polygon with no area left inside is dropped.
    """

    def apply_polygons(self, polygons: list) -> list:
        """Clip and shift polygons into the crop window.

        Args:
            polygons: list of (K, 2) float arrays of (x, y) pixels in the uncropped image.

        Returns:
            list of (M, 2) float64 arrays in the cropped image's pixels (possibly fewer
            polygons than given: those with no area inside the window are dropped).
        """
        x0, y0 = float(self.x0), float(self.y0)
        x1, y1 = x0 + self.w, y0 + self.h
        cropped = []
        for polygon in polygons:
            poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
            clipped = _clip_polygon_to_box(poly, x0, y0, x1, y1)
            if len(clipped) < 3:
                continue
            x, y = clipped[:, 0], clipped[:, 1]
            if 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) <= 0:
                continue  # a line or a point: no area inside the window
            cropped.append(clipped)
        return [self.apply_coords(p) for p in cropped]
