"""Turning a list of input dicts into one normalized, padded image batch (every meta-architecture)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from segcore.structures import ImageList

__all__ = ["preprocess_images", "register_pixel_normalization"]


def register_pixel_normalization(module: nn.Module, pixel_mean: Sequence[float], pixel_std: Sequence[float]) -> None:
    """Register ``pixel_mean`` and ``pixel_std`` on ``module`` as non-persistent (C, 1, 1) float32 buffers.

    They follow the module to its device and are not part of its state dict (as Detectron2's
    meta-architectures). Values are per channel, in ``INPUT.FORMAT`` order, in 0..255 pixel units.

    Raises:
        ValueError: the two sequences differ in length or are empty, or a std is not positive.
    """
    if len(pixel_mean) != len(pixel_std) or len(pixel_mean) == 0:
        raise ValueError(f"PIXEL_MEAN {tuple(pixel_mean)} and PIXEL_STD {tuple(pixel_std)} must be non-empty and "
                         "of the same length (one value per input channel)")
    if any(s <= 0 for s in pixel_std):
        raise ValueError(f"PIXEL_STD {tuple(pixel_std)} must be positive")
    module.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
    module.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)


def preprocess_images(batched_inputs: Sequence[dict], pixel_mean: torch.Tensor, pixel_std: torch.Tensor,
                      size_divisibility: int, padding_constraints: Optional[dict] = None) -> ImageList:
    """Normalize each input's ``"image"`` and pad them into one batch.

    Args:
        batched_inputs: dicts with ``"image"``: uint8 or float (C, H, W) in 0..255 units, on any device.
        pixel_mean, pixel_std: (C, 1, 1) float tensors on the model's device
            (see :func:`register_pixel_normalization`).
        size_divisibility: pad height and width to a multiple of this (pixels); <= 0 pads only to
            the largest image.
        padding_constraints: the backbone's ``padding_constraints`` (see :class:`ImageList`).

    Returns:
        an :class:`ImageList`: float32 (B, C, Hpad, Wpad) ``(image - mean) / std``, padded with 0
        at the bottom and right, and each image's (H, W).

    Raises:
        ValueError: an image is not (C, H, W) with C = ``len(pixel_mean)`` (the message gives its index).
    """
    channels = pixel_mean.shape[0]
    images = []
    for i, x in enumerate(batched_inputs):
        img = x["image"]
        if img.dim() != 3 or img.shape[0] != channels:
            raise ValueError(f"batched_inputs[{i}]['image'] must be ({channels}, H, W); got {tuple(img.shape)}")
        images.append((img.to(pixel_mean.device) - pixel_mean) / pixel_std)
    return ImageList.from_tensors(images, size_divisibility, padding_constraints=padding_constraints)
