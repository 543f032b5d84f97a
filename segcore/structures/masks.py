"""Per-instance masks: ``BitMasks`` and ``PolygonMasks`` (as in Detectron2's ``detectron2/structures/masks.py``).

Polygons and COCO run-length encodings (RLE) are rasterized with pycocotools, as in Detectron2.
"""
from __future__ import annotations

import copy
import itertools
from typing import Any, Iterator, List, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
import torch

from .boxes import Boxes

__all__ = ["BitMasks", "PolygonMasks", "boxes_from_occupancy", "polygon_area", "polygons_to_bitmask", "rle_to_bitmask"]


def polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area of one simple polygon by the shoelace formula, in square pixels.

    Args:
        x, y: (K,) vertex coordinates in pixels.
    """
    # https://stackoverflow.com/questions/24467972/calculate-area-of-polygon-given-x-y-coordinates
    return 0.5 * np.abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def polygons_to_bitmask(polygons: Sequence[Union[np.ndarray, Sequence[float]]], height: int, width: int) -> np.ndarray:
    """Rasterize the polygons of one instance (Detectron2 ``polygons_to_bitmask``).

    The polygons are drawn with pycocotools (``frPyObjects`` then ``merge``, i.e. their union)
    in COCO's convention: coordinates are in pixels, pixel (i, j) covers [j, j+1) x [i, i+1).

    Args:
        polygons: each a flat sequence (x0, y0, x1, y1, ...) of at least 3 points.
        height, width: the mask size in pixels.

    Returns:
        (height, width) bool ndarray; all False when ``polygons`` is empty.

    Raises:
        ValueError: a polygon with an odd number of coordinates or fewer than 3 points.
    """
    if len(polygons) == 0:
        return np.zeros((height, width), dtype=bool)
    flat = []
    for i, p in enumerate(polygons):
        p = np.asarray(p, dtype=np.float64).reshape(-1)
        if len(p) % 2 != 0 or len(p) < 6:
            raise ValueError(
                f"Polygon {i} must be a flat list of at least 3 (x, y) points; got {len(p)} coordinates"
            )
        flat.append(p.tolist())
    rles = mask_util.frPyObjects(flat, height, width)
    rle = mask_util.merge(rles)
    return mask_util.decode(rle).astype(bool)


def rle_to_bitmask(rle: dict) -> np.ndarray:
    """Decode one COCO run-length encoding (compressed or not) into a bool mask.

    Args:
        rle: ``{"size": [height, width], "counts": str | bytes | list[int]}``; a list of counts
            is COCO's uncompressed RLE (used for crowd regions).

    Returns:
        (height, width) bool ndarray.

    Raises:
        ValueError: ``rle`` lacks "size" or "counts".
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        keys = sorted(rle) if isinstance(rle, dict) else type(rle).__name__
        raise ValueError(f"A COCO RLE must be a dict with 'size' and 'counts'; got {keys}")
    if isinstance(rle["counts"], list):
        rle = mask_util.frPyObjects(rle, *rle["size"])
    elif isinstance(rle["counts"], str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_util.decode(rle).astype(bool)


def boxes_from_occupancy(x_any: torch.Tensor, y_any: torch.Tensor) -> torch.Tensor:
    """Tight boxes of masks from which of their columns and rows hold a pixel.

    Args:
        x_any: (N, W) bool, ``masks.any(dim=1)``; y_any: (N, H) bool, ``masks.any(dim=2)``.

    Returns:
        (N, 4) float32 XYXY boxes in pixels, x1 and y1 exclusive (Detectron2's
        ``BitMasks.get_bounding_boxes``); an empty mask gives (0, 0, 0, 0).
    """
    n, w = x_any.shape
    h = y_any.shape[1]
    boxes = torch.zeros(n, 4, dtype=torch.float32, device=x_any.device)
    if n == 0 or h == 0 or w == 0:
        return boxes
    nonempty = x_any.any(dim=1)
    # first / last set column and row via argmax on the (reversed) indicator
    x0 = x_any.to(torch.uint8).argmax(dim=1)
    x1 = w - x_any.flip(1).to(torch.uint8).argmax(dim=1)
    y0 = y_any.to(torch.uint8).argmax(dim=1)
    y1 = h - y_any.flip(1).to(torch.uint8).argmax(dim=1)
    stacked = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
    boxes[nonempty] = stacked[nonempty]
    return boxes


class BitMasks:
    """N binary masks of one image, stored as one bool tensor (Detectron2 ``BitMasks``).

    Attributes:
        tensor: (N, H, W) bool.
        image_size: (H, W) in pixels.
    """

    def __init__(self, tensor: Union[torch.Tensor, np.ndarray]):
        """
        Args:
            tensor: (N, H, W) masks of any dtype; non-zero means inside. Converted to bool.

        Raises:
            ValueError: the input is not 3-D.
        """
        if isinstance(tensor, torch.Tensor):
            tensor = tensor.to(torch.bool)
        else:
            tensor = torch.as_tensor(np.asarray(tensor), dtype=torch.bool)
        if tensor.dim() != 3:
            raise ValueError(f"BitMasks expects a tensor of shape (N, H, W); got {tuple(tensor.shape)}")
        self.image_size = tensor.shape[1:]
        self.tensor = tensor

    def to(self, *args: Any, **kwargs: Any) -> "BitMasks":
        return BitMasks(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def __getitem__(self, item) -> "BitMasks":
        """Index with an int, a slice, a bool mask or an index tensor; always returns BitMasks."""
        if isinstance(item, int):
            return BitMasks(self.tensor[item].unsqueeze(0))
        m = self.tensor[item]
        if m.dim() != 3:
            raise IndexError(f"Indexing BitMasks with {item} gave a tensor of shape {tuple(m.shape)}")
        return BitMasks(m)

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield each mask as an (H, W) bool tensor."""
        yield from self.tensor

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_instances={len(self.tensor)})"

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def nonempty(self) -> torch.Tensor:
        """(N,) bool: masks with at least one pixel set."""
        return self.tensor.flatten(1).any(dim=1)

    def area(self) -> torch.Tensor:
        """(N,) int64: number of pixels set in each mask."""
        return self.tensor.flatten(1).sum(dim=1)

    def get_bounding_boxes(self) -> Boxes:
        """The tight box around each mask, in pixels (x1 and y1 exclusive, as in Detectron2).

        Returns:
            Boxes with a (N, 4) float32 tensor; an empty mask gives the box (0, 0, 0, 0).
        """
        return Boxes(boxes_from_occupancy(self.tensor.any(dim=1), self.tensor.any(dim=2)))

    @staticmethod
    def from_polygon_masks(
        polygon_masks: Union["PolygonMasks", List[List[np.ndarray]]], height: int, width: int
    ) -> "BitMasks":
        """Rasterize polygon masks into an (N, height, width) BitMasks (Detectron2's)."""
        if isinstance(polygon_masks, PolygonMasks):
            polygon_masks = polygon_masks.polygons
        masks = [polygons_to_bitmask(p, height, width) for p in polygon_masks]
        if len(masks) == 0:
            return BitMasks(torch.zeros((0, height, width), dtype=torch.bool))
        return BitMasks(torch.stack([torch.from_numpy(x) for x in masks]))

    @staticmethod
    def cat(bitmasks_list: List["BitMasks"]) -> "BitMasks":
        """Concatenate BitMasks of the same image size.

        Raises:
            TypeError: an element is not a BitMasks.
            ValueError: the list is empty or the image sizes differ.
        """
        if len(bitmasks_list) == 0:
            raise ValueError("BitMasks.cat needs at least one BitMasks")
        for m in bitmasks_list:
            if not isinstance(m, BitMasks):
                raise TypeError(f"BitMasks.cat takes a list of BitMasks; got {type(m).__name__}")
        sizes = {tuple(m.image_size) for m in bitmasks_list}
        if len(sizes) != 1:
            raise ValueError(f"BitMasks.cat: masks have different image sizes {sorted(sizes)}")
        return BitMasks(torch.cat([m.tensor for m in bitmasks_list], dim=0))


class PolygonMasks:
    """N instance masks, each a list of polygons (Detectron2 ``PolygonMasks``).

    Attributes:
        polygons: list of N lists; ``polygons[i]`` holds the polygons of instance i, each a flat
            float64 ndarray (x0, y0, x1, y1, ...) in pixels.
    """

    def __init__(self, polygons: Sequence[Sequence[Union[np.ndarray, Sequence[float]]]]):
        """
        Args:
            polygons: for each instance, a list of polygons; a polygon is a flat sequence or
                ndarray of at least 3 (x, y) points.

        Raises:
            ValueError: ``polygons`` is not a list of lists, or a polygon has an odd number of
                coordinates or fewer than 3 points (the message gives the instance and polygon).
        """
        if not isinstance(polygons, list):
            raise ValueError(
                "PolygonMasks takes a list of lists of polygons (one list per instance); "
                f"got {type(polygons).__name__}"
            )
        checked: List[List[np.ndarray]] = []
        for i, polygons_per_instance in enumerate(polygons):
            if not isinstance(polygons_per_instance, (list, tuple)):
                raise ValueError(
                    f"PolygonMasks: instance {i} must be a list of polygons; got {type(polygons_per_instance).__name__}"
                )
            instance = []
            for j, p in enumerate(polygons_per_instance):
                if isinstance(p, torch.Tensor):
                    p = p.cpu().numpy()
                arr = np.asarray(p, dtype=np.float64).reshape(-1)
                if len(arr) % 2 != 0 or len(arr) < 6:
                    raise ValueError(
                        f"PolygonMasks: polygon {j} of instance {i} must have an even number (>= 6) of "
                        f"coordinates; got {len(arr)}"
                    )
                instance.append(arr)
            checked.append(instance)
        self.polygons = checked

    def to(self, *args: Any, **kwargs: Any) -> "PolygonMasks":
        """Polygons live on the CPU as ndarrays; returns self (as in Detectron2)."""
        return self

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def get_bounding_boxes(self) -> Boxes:
        """The box around all polygons of each instance, in pixels.

        Returns:
            Boxes with a (N, 4) float32 XYXY tensor.
        """
        boxes = torch.zeros(len(self.polygons), 4, dtype=torch.float32)
        for idx, polygons_per_instance in enumerate(self.polygons):
            minxy = torch.as_tensor([float("inf"), float("inf")], dtype=torch.float32)
            maxxy = torch.zeros(2, dtype=torch.float32)
            for polygon in polygons_per_instance:
                coords = torch.from_numpy(polygon).view(-1, 2).to(dtype=torch.float32)
                minxy = torch.min(minxy, torch.min(coords, dim=0).values)
                maxxy = torch.max(maxxy, torch.max(coords, dim=0).values)
            boxes[idx, :2] = minxy
            boxes[idx, 2:] = maxxy
        return Boxes(boxes)

    def nonempty(self) -> torch.Tensor:
        """(N,) bool: instances with at least one polygon."""
        return torch.as_tensor([len(p) > 0 for p in self.polygons], dtype=torch.bool)

    def __getitem__(self, item: Union[int, slice, List[int], torch.Tensor]) -> "PolygonMasks":
        """Select instances by int, slice, list of indices, or bool / integer tensor.

        Raises:
            ValueError: a bool tensor whose length is not N.
        """
        if isinstance(item, int):
            selected = [self.polygons[item]]
        elif isinstance(item, slice):
            selected = self.polygons[item]
        elif isinstance(item, list):
            selected = [self.polygons[i] for i in item]
        elif isinstance(item, torch.Tensor):
            if item.dtype == torch.bool:
                if item.dim() != 1 or item.numel() != len(self):
                    raise ValueError(
                        f"PolygonMasks: a bool index must have shape ({len(self)},); got {tuple(item.shape)}"
                    )
                item = item.nonzero(as_tuple=False).squeeze(1)
            selected = [self.polygons[i] for i in item.view(-1).tolist()]
        else:
            raise TypeError(f"PolygonMasks cannot be indexed with {type(item).__name__}")
        return PolygonMasks(selected)

    def __iter__(self) -> Iterator[List[np.ndarray]]:
        """Yield the list of polygons of each instance."""
        return iter(self.polygons)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_instances={len(self.polygons)})"

    def __len__(self) -> int:
        return len(self.polygons)

    def area(self) -> torch.Tensor:
        """(N,) float32: summed shoelace area of each instance's polygons, in square pixels.

        As in Detectron2, overlapping polygons of one instance are counted twice.
        """
        area = []
        for polygons_per_instance in self.polygons:
            area_per_instance = 0.0
            for p in polygons_per_instance:
                area_per_instance += polygon_area(p[0::2], p[1::2])
            area.append(area_per_instance)
        return torch.tensor(area, dtype=torch.float32)

    @staticmethod
    def cat(polymasks_list: List["PolygonMasks"]) -> "PolygonMasks":
        """Concatenate PolygonMasks along the instance axis.

        Raises:
            TypeError: an element is not a PolygonMasks.
            ValueError: the list is empty.
        """
        if len(polymasks_list) == 0:
            raise ValueError("PolygonMasks.cat needs at least one PolygonMasks")
        for m in polymasks_list:
            if not isinstance(m, PolygonMasks):
                raise TypeError(f"PolygonMasks.cat takes a list of PolygonMasks; got {type(m).__name__}")
        return PolygonMasks(copy.deepcopy(list(itertools.chain.from_iterable(m.polygons for m in polymasks_list))))
