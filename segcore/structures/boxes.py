"""Axis-aligned boxes: ``Boxes`` (an (N, 4) XYXY tensor) and ``BoxMode`` (format conversion).

As in Detectron2's ``detectron2/structures/boxes.py`` (the subset used by segmentation models).
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any, Iterator, List, Tuple, Union

import numpy as np
import torch

__all__ = ["Boxes", "BoxMode"]

_RawBoxType = Union[List[float], Tuple[float, ...], torch.Tensor, np.ndarray]


class BoxMode(IntEnum):
    """How a box is written down (Detectron2 ``BoxMode``; the integer values are the same).

    ``XYXY_ABS``: (x0, y0, x1, y1) in pixels. ``XYWH_ABS``: (x0, y0, w, h) in pixels, as COCO
    annotations store them. The relative modes of Detectron2 are not supported.
    """

    XYXY_ABS = 0
    XYWH_ABS = 1

    @staticmethod
    def convert(box: _RawBoxType, from_mode: "BoxMode", to_mode: "BoxMode") -> _RawBoxType:
        """Convert one box (4 numbers) or an (N, 4) array/tensor between modes.

        Returns the same container type it was given (list, tuple, ndarray or tensor).

        Raises:
            ValueError: an unknown mode, or boxes that are not (4,) or (N, 4).
        """
        from_mode, to_mode = BoxMode(from_mode), BoxMode(to_mode)
        if from_mode == to_mode:
            return box
        original_type = type(box)
        single = isinstance(box, (list, tuple))
        if single:
            if len(box) != 4:
                raise ValueError(f"BoxMode.convert takes 4 numbers for one box, got {len(box)}: {box}")
            arr = torch.tensor(box, dtype=torch.float64)[None, :]
        elif isinstance(box, np.ndarray):
            arr = torch.from_numpy(np.asarray(box)).clone()
        else:
            arr = box.clone()
        if arr.ndim != 2 or arr.shape[-1] != 4:
            raise ValueError(f"BoxMode.convert takes boxes of shape (N, 4); got {tuple(arr.shape)}")
        if from_mode == BoxMode.XYWH_ABS:  # -> XYXY_ABS
            arr[:, 2] += arr[:, 0]
            arr[:, 3] += arr[:, 1]
        else:  # XYXY_ABS -> XYWH_ABS
            arr[:, 2] -= arr[:, 0]
            arr[:, 3] -= arr[:, 1]
        if single:
            return original_type(arr.flatten().tolist())
        if isinstance(box, np.ndarray):
            return arr.numpy()
        return arr


class Boxes:
    """A list of N boxes stored as one float32 tensor (Detectron2 ``Boxes``).

    Attributes:
        tensor: (N, 4) float32, each row (x0, y0, x1, y1) in pixels (XYXY_ABS).
    """

    def __init__(self, tensor: _RawBoxType):
        """
        Args:
            tensor: (N, 4) boxes in XYXY_ABS (tensor, ndarray or nested list). An empty input
                becomes a (0, 4) tensor.

        Raises:
            ValueError: the input is not of shape (N, 4).
        """
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(np.asarray(tensor, dtype=np.float32), dtype=torch.float32)
        else:
            tensor = tensor.to(torch.float32)
        if tensor.numel() == 0:
            tensor = tensor.reshape((-1, 4)).to(dtype=torch.float32)
        if tensor.dim() != 2 or tensor.size(-1) != 4:
            raise ValueError(f"Boxes expects a tensor of shape (N, 4); got {tuple(tensor.shape)}")
        self.tensor = tensor

    def clone(self) -> "Boxes":
        return Boxes(self.tensor.clone())

    def to(self, *args: Any, **kwargs: Any) -> "Boxes":
        return Boxes(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def area(self) -> torch.Tensor:
        """(N,) float32: width * height of each box in square pixels."""
        box = self.tensor
        return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])

    def clip(self, box_size: Tuple[int, int]) -> None:
        """Clip the boxes in place to an image of size ``(height, width)`` pixels.

        Raises:
            ValueError: the boxes contain inf or nan.
        """
        if not torch.isfinite(self.tensor).all():
            raise ValueError("Boxes.clip: the boxes contain inf or nan")
        h, w = box_size
        x1 = self.tensor[:, 0].clamp(min=0, max=w)
        y1 = self.tensor[:, 1].clamp(min=0, max=h)
        x2 = self.tensor[:, 2].clamp(min=0, max=w)
        y2 = self.tensor[:, 3].clamp(min=0, max=h)
        self.tensor = torch.stack((x1, y1, x2, y2), dim=-1)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """(N,) bool: boxes whose width and height are both larger than ``threshold`` pixels."""
        box = self.tensor
        widths = box[:, 2] - box[:, 0]
        heights = box[:, 3] - box[:, 1]
        return (widths > threshold) & (heights > threshold)

    def get_centers(self) -> torch.Tensor:
        """(N, 2) float32: the (x, y) centre of each box."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale the boxes in place: x coordinates by ``scale_x``, y by ``scale_y``."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    def inside_box(self, box_size: Tuple[int, int], boundary_threshold: int = 0) -> torch.Tensor:
        """(N,) bool: boxes inside an image of size ``(height, width)``, with a tolerance."""
        height, width = box_size
        t = boundary_threshold
        return (
            (self.tensor[..., 0] >= -t)
            & (self.tensor[..., 1] >= -t)
            & (self.tensor[..., 2] < width + t)
            & (self.tensor[..., 3] < height + t)
        )

    def __getitem__(self, item) -> "Boxes":
        """Index with an int, a slice, a bool mask or an index tensor; always returns Boxes."""
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        b = self.tensor[item]
        if b.dim() != 2:
            raise IndexError(f"Indexing Boxes with {item} gave a tensor of shape {tuple(b.shape)}")
        return Boxes(b)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return "Boxes(" + str(self.tensor) + ")"

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield each box as a (4,) tensor."""
        yield from self.tensor

    @classmethod
    def cat(cls, boxes_list: List["Boxes"]) -> "Boxes":
        """Concatenate a list of Boxes into one.

        Raises:
            TypeError: an element is not a Boxes.
        """
        if not isinstance(boxes_list, (list, tuple)):
            raise TypeError(f"Boxes.cat takes a list of Boxes, got {type(boxes_list).__name__}")
        if len(boxes_list) == 0:
            return cls(torch.empty(0, 4))
        for b in boxes_list:
            if not isinstance(b, Boxes):
                raise TypeError(f"Boxes.cat takes a list of Boxes; got an element of type {type(b).__name__}")
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))
