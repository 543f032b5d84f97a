"""Resizing model outputs back to the original image size."""
from __future__ import annotations

from typing import Tuple

import torch
from torch.nn import functional as F

__all__ = ["sem_seg_postprocess"]


def sem_seg_postprocess(result: torch.Tensor, img_size: Tuple[int, int], output_height: int,
                        output_width: int) -> torch.Tensor:
    """Crop padding off a per-pixel prediction and resize it to the requested output size.

    Args:
        result: (C, Hpad, Wpad) float prediction at the padded input resolution.
        img_size: (h, w) of the input image inside the padded tensor, in pixels.
        output_height, output_width: the size to return (usually the original image size).

    Returns:
        (C, output_height, output_width), bilinearly resized (align_corners=False).
    """
    result = result[:, : img_size[0], : img_size[1]].expand(1, -1, -1, -1)
    result = F.interpolate(result, size=(output_height, output_width), mode="bilinear", align_corners=False)[0]
    return result
