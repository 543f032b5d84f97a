"""Per-instance binary masks: ``BitMasks`` (as in Detectron2's ``detectron2/structures/masks.py``)."""
from __future__ import annotations

from typing import Any, Iterator, List, Union

import numpy as np
import torch

from .boxes import Boxes

__all__ = ["BitMasks"]


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
        n, h, w = self.tensor.shape
        boxes = torch.zeros(n, 4, dtype=torch.float32, device=self.tensor.device)
        if n == 0 or h == 0 or w == 0:
            return Boxes(boxes)
        x_any = self.tensor.any(dim=1)  # (N, W)
        y_any = self.tensor.any(dim=2)  # (N, H)
        nonempty = x_any.any(dim=1)
        # first / last set column and row via argmax on the (reversed) indicator
        x0 = x_any.to(torch.uint8).argmax(dim=1)
        x1 = w - x_any.flip(1).to(torch.uint8).argmax(dim=1)
        y0 = y_any.to(torch.uint8).argmax(dim=1)
        y1 = h - y_any.flip(1).to(torch.uint8).argmax(dim=1)
        stacked = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
        boxes[nonempty] = stacked[nonempty]
        return Boxes(boxes)

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
