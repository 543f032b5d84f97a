"""ImageList: a batch of images of different sizes, padded into one tensor."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

__all__ = ["ImageList"]


class ImageList:
    """Images of possibly different sizes stored as one padded tensor (Detectron2 ``ImageList``).

    Attributes:
        tensor: (N, C, Hmax, Wmax) padded batch, same dtype and device as the inputs.
        image_sizes: the (height, width) of each image before padding, in pixels.
    """

    def __init__(self, tensor: torch.Tensor, image_sizes: List[Tuple[int, int]]):
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx: int) -> torch.Tensor:
        """The idx-th image without padding, (C, H, W)."""
        h, w = self.image_sizes[idx]
        return self.tensor[idx, ..., :h, :w]

    def to(self, *args, **kwargs) -> "ImageList":
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @staticmethod
    def from_tensors(tensors: Sequence[torch.Tensor], size_divisibility: int = 0, pad_value: float = 0.0,
                     padding_constraints: Optional[dict] = None) -> "ImageList":
        """Pad tensors of shape (..., H_i, W_i) at the bottom and right into one batch.

        Args:
            tensors: non-empty sequence of tensors with equal leading dims and dtype.
            size_divisibility: if > 1, the padded height and width are rounded up to a multiple
                of it (pixels), as backbones with stride 32 need.
            pad_value: value of the padded pixels.
            padding_constraints: optional {"size_divisibility": int, "square_size": int}.

        Returns:
            An ImageList with ``tensor`` of shape (N, ..., Hpad, Wpad).

        Raises:
            ValueError: empty input or tensors of different leading shape.
        """
        if len(tensors) == 0:
            raise ValueError("ImageList.from_tensors needs at least one tensor")
        lead = tensors[0].shape[:-2]
        for t in tensors:
            if t.shape[:-2] != lead:
                raise ValueError(f"All tensors must share leading dims {tuple(lead)}; got {tuple(t.shape)}")
        image_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        max_h = max(s[0] for s in image_sizes)
        max_w = max(s[1] for s in image_sizes)
        square_size = 0
        if padding_constraints is not None:
            square_size = padding_constraints.get("square_size", 0)
            if padding_constraints.get("size_divisibility", 0) > 0:
                size_divisibility = padding_constraints["size_divisibility"]
        if square_size > 0:
            max_h = max_w = max(square_size, max_h, max_w)
        if size_divisibility > 1:
            s = size_divisibility
            max_h = (max_h + s - 1) // s * s
            max_w = (max_w + s - 1) // s * s
        if len(tensors) == 1:
            h, w = image_sizes[0]
            batched = F.pad(tensors[0], [0, max_w - w, 0, max_h - h], value=pad_value).unsqueeze(0)
        else:
            batched = tensors[0].new_full((len(tensors), *lead, max_h, max_w), pad_value)
            for img, pad_img in zip(tensors, batched):
                pad_img[..., : img.shape[-2], : img.shape[-1]].copy_(img)
        return ImageList(batched.contiguous(), image_sizes)
