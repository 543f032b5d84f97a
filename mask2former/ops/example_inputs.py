"""Synthetic inputs of multi-scale deformable attention shaped like Mask2Former's pixel-decoder
encoder, for benchmarks (``tools/benchmark_msda.py``) and kernel tests."""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import Tensor

__all__ = ["encoder_inputs"]


def encoder_inputs(batch: int = 2, image_size: int = 512, *, strides: Sequence[int] = (8, 16, 32), heads: int = 8,
                   points: int = 4, channels: int = 256, dtype: torch.dtype = torch.float32,
                   device="cpu", seed: int = 0) -> List[Tensor]:
    """Inputs of :func:`mask2former.ops.ms_deform_attn` for the encoder's self-attention over an
    ``image_size`` x ``image_size`` input (Mask2Former R50: strides 8, 16, 32, 8 heads, 4 points,
    256 channels, so D = 32).

    Every position is a query (Lq = S). As in the trained model, each query samples around its own
    pixel: the original initialization's directions (head m at angle 2 pi m / M, point k at k + 1
    pixels) plus N(0, 1) pixels of noise, on every level, so some samples fall outside the map.
    Attention weights are a softmax of N(0, 1) logits over the L * P samples; values are N(0, 1).

    Args:
        batch: N. image_size: the input's side, in pixels (a multiple of the largest stride).
        strides: the levels' strides. heads: M. points: P. channels: M * D.
        dtype: the floating-point dtype. device: where the tensors live. seed: the generator's seed.

    Returns:
        [value (N, S, M, D), spatial_shapes (L, 2) int64, level_start_index (L,) int64,
        sampling_locations (N, S, M, L, P, 2), attention_weights (N, S, M, L, P)].

    Raises:
        ValueError: ``image_size`` is not a positive multiple of every stride, or ``channels`` is not
            divisible by ``heads``.
    """
    if image_size <= 0 or any(image_size % s for s in strides):
        raise ValueError(f"encoder_inputs: image_size {image_size} must be a positive multiple of the strides {strides}")
    if channels % heads:
        raise ValueError(f"encoder_inputs: channels ({channels}) must be divisible by heads ({heads})")
    g = torch.Generator().manual_seed(seed)
    hw = [(image_size // s, image_size // s) for s in strides]
    levels = len(hw)
    spatial_shapes = torch.tensor(hw, dtype=torch.int64)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))
    s = int(sizes.sum())
    centres = []
    for h, w in hw:
        y, x = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
        centres.append(torch.stack((x.flatten(), y.flatten()), -1))
    reference = torch.cat(centres)  # (S, 2): each query's own pixel, normalized
    theta = torch.arange(heads) * (2 * math.pi / heads)
    directions = torch.stack((theta.cos(), theta.sin()), -1)
    directions = directions / directions.abs().max(-1, keepdim=True).values
    offsets = directions[:, None, None, :] * torch.arange(1, points + 1.0)[None, None, :, None]  # (M, 1, P, 2) pixels
    offsets = offsets + torch.randn(batch, s, heads, levels, points, 2, generator=g)
    normalizer = spatial_shapes.flip(-1).float()  # (L, 2) = (W, H)
    locations = reference[None, :, None, None, None, :] + offsets / normalizer[None, None, None, :, None, :]
    weights = torch.randn(batch, s, heads, levels * points, generator=g).softmax(-1)
    weights = weights.view(batch, s, heads, levels, points)
    value = torch.randn(batch, s, heads, channels // heads, generator=g)
    return [value.to(device=device, dtype=dtype), spatial_shapes.to(device), level_start_index.to(device),
            locations.to(device=device, dtype=dtype), weights.to(device=device, dtype=dtype)]
