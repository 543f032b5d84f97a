"""ShapeSpec: the shape of a feature map, as a backbone declares it to heads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["ShapeSpec"]


@dataclass
class ShapeSpec:
    """Shape of a tensor (Detectron2 ``ShapeSpec``).

    Attributes:
        channels: number of channels (C of an N x C x H x W tensor).
        height, width: spatial size in pixels, if fixed.
        stride: downsampling factor relative to the input image (pixels per feature cell).
    """

    channels: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    stride: Optional[int] = None
