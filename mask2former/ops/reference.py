"""The pure-PyTorch reference of multi-scale deformable attention (Deformable DETR, Zhu et al.,
ICLR 2021, Sec. 4.1, Eq. 3), forward and backward; the compiled kernels (C++ CPU, CUDA) are tested
against it and it runs wherever they do not (see :mod:`mask2former.ops.dispatch`).

For every query q, head m, level l and point k, the head's value map of level l is sampled
bilinearly at the location p_{mqlk} and weighted by A_{mqlk}; the weighted samples are summed
over levels and points:

    out[n, q, m*D:(m+1)*D] = sum_{l, k} A[n, q, m, l, k] * bilinear(value_l[n, :, m, :], p[n, q, m, l, k])

Conventions (those of the original kernels and of ``F.grid_sample(..., align_corners=False)``):
locations are normalized to [0, 1] x [0, 1] over each level's map, x (width) first, then y;
pixel (i, j) of an H x W map has its centre at ((j + 0.5) / W, (i + 0.5) / H); a sample's
neighbours outside the map count as zero.

The reference is the oracle of the kernels, also where the inputs are not finite (what
``F.grid_sample``'s CPU kernel gives in float32 and float64 on x86, measured for torch 2.13): a
location whose pixel coordinate is NaN or infinite (NaN, +-inf, or |loc| past the dtype's range
after ``2 * loc - 1`` and ``(grid + 1) * size / 2``) samples NaN; its gradient is NaN for the
attention weight and for the other coordinate, 0 for the non-finite coordinate, and grad_value
gets nothing from it; huge finite locations sample 0. In bfloat16 ``F.grid_sample`` is no oracle
for huge or non-finite locations (it reads a pixel there); the kernels' bfloat16 follows float32.
The written-out backward (:func:`ms_deform_attn_pytorch_backward`) is differentiable: the registered
operator uses it for double backward.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["ms_deform_attn_pytorch", "ms_deform_attn_pytorch_backward"]

# F.grid_sample's integer codes, for its backward (aten.grid_sampler_2d_backward)
_BILINEAR, _ZEROS_PADDING = 0, 0


def _level_shapes(spatial_shapes: Tensor) -> List[Tuple[int, int]]:
    return [(int(h), int(w)) for h, w in spatial_shapes.tolist()]


def _levels_and_grids(value: Tensor, spatial_shapes: Tensor,
                      sampling_locations: Tensor) -> Tuple[List[Tuple[int, int]], Tuple[Tensor, ...], Tensor]:
    """The levels' (H, W), ``value`` split into its levels ((N, H*W, M, D) each) and ``grid_sample``'s
    grids (``2 * loc - 1``: [-1, 1] spans the map to its outer pixel edges, ``align_corners=False``)."""
    shapes = _level_shapes(spatial_shapes)
    return shapes, value.split([h * w for h, w in shapes], dim=1), sampling_locations * 2.0 - 1.0


def ms_deform_attn_pytorch(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                           sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
    """Multi-scale deformable attention in plain PyTorch (no input checks; see :func:`ms_deform_attn`).

    One bilinear ``F.grid_sample`` per level (zero padding, ``align_corners=False``); the samples
    of all levels and points are weighted by the attention weights and summed in one reduction
    (the original's order, so float results are bit-identical to it). Differentiable with respect
    to ``value``, ``sampling_locations`` and ``attention_weights``.

    Args:
        value: (N, S, M, D) float, the per-head values of all levels flattened row-major and
            concatenated, S = sum_l H_l * W_l.
        spatial_shapes: (L, 2) integer, (H_l, W_l) per level.
        level_start_index: (L,) integer, where each level starts in S. The reference takes the level
            boundaries from ``spatial_shapes`` and only accepts this argument for the kernels'
            signature; :func:`ms_deform_attn` checks that the two agree.
        sampling_locations: (N, Lq, M, L, P, 2) float, normalized (x, y) in [0, 1] (values outside
            sample zeros).
        attention_weights: (N, Lq, M, L, P) float.

    Returns:
        (N, Lq, M * D) tensor of ``value``'s dtype, head-major along the last dimension.

    Source: Deformable DETR (Zhu et al., ICLR 2021), Eq. 3; the original ``ms_deform_attn_core_pytorch``.
    """
    del level_start_index  # the boundaries follow from spatial_shapes
    n, _, m, d = value.shape
    lq, num_levels, num_points = sampling_locations.shape[1], sampling_locations.shape[3], sampling_locations.shape[4]
    shapes, values_per_level, grids = _levels_and_grids(value, spatial_shapes, sampling_locations)
    samples = []
    for level, (h, w) in enumerate(shapes):
        # (N, H*W, M, D) -> (N*M, D, H, W)
        value_map = values_per_level[level].permute(0, 2, 3, 1).reshape(n * m, d, h, w)
        # (N, Lq, M, P, 2) -> (N*M, Lq, P, 2)
        grid = grids[:, :, :, level].transpose(1, 2).reshape(n * m, lq, num_points, 2)
        # (N*M, D, Lq, P)
        samples.append(F.grid_sample(value_map, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    # one sum over all levels and points, as the original (same rounding): (N*M, D, Lq, L*P)
    samples = torch.cat(samples, dim=-1)
    # (N, Lq, M, L, P) -> (N*M, 1, Lq, L*P)
    weights = attention_weights.transpose(1, 2).reshape(n * m, 1, lq, num_levels * num_points)
    out = (samples * weights).sum(-1)
    # (N*M, D, Lq) -> (N, M*D, Lq) -> (N, Lq, M*D)
    return out.view(n, m * d, lq).transpose(1, 2).contiguous()


def ms_deform_attn_pytorch_backward(grad_output: Tensor, value: Tensor, spatial_shapes: Tensor,
                                    level_start_index: Tensor, sampling_locations: Tensor,
                                    attention_weights: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The gradients of :func:`ms_deform_attn_pytorch` with respect to ``value``,
    ``sampling_locations`` and ``attention_weights``, computed without autograd.

    The same computation autograd performs through the reference (``F.grid_sample``'s own
    backward, ``aten.grid_sampler_2d_backward``, level by level), written out so that it runs inside
    the registered backward operator, where autograd does not record. Itself differentiable (both
    ops have derivatives): with grad mode on it records a graph, which the operator's double
    backward uses. No input checks.

    Args:
        grad_output: (N, Lq, M * D), the gradient of the output, ``value``'s dtype.
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights: as for
            :func:`ms_deform_attn_pytorch`.

    Returns:
        (grad_value (N, S, M, D), grad_sampling_locations (N, Lq, M, L, P, 2),
        grad_attention_weights (N, Lq, M, L, P)), each of its input's dtype.

    Source: Deformable DETR (Zhu et al., ICLR 2021), Eq. 3, differentiated.
    """
    del level_start_index  # the boundaries follow from spatial_shapes
    n, _, m, d = value.shape
    lq, num_levels, num_points = sampling_locations.shape[1], sampling_locations.shape[3], sampling_locations.shape[4]
    shapes, values_per_level, grids = _levels_and_grids(value, spatial_shapes, sampling_locations)
    # (N, Lq, M * D) -> (N*M, D, Lq, 1): broadcast over the points as the forward's weights
    grad = grad_output.reshape(n, lq, m, d).permute(0, 2, 3, 1).reshape(n * m, d, lq, 1)
    weights = attention_weights.transpose(1, 2).reshape(n * m, 1, lq, num_levels, num_points)
    grad_values, grad_grids, grad_weights = [], [], []
    for level, (h, w) in enumerate(shapes):
        value_map = values_per_level[level].permute(0, 2, 3, 1).reshape(n * m, d, h, w)
        grid = grids[:, :, :, level].transpose(1, 2).reshape(n * m, lq, num_points, 2)
        samples = F.grid_sample(value_map, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # out = sum_{l, p} samples * weights: d/d weights = <grad, samples> over D, d/d samples = grad * weights
        grad_weights.append((samples * grad).sum(1))  # (N*M, Lq, P)
        grad_value_map, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad * weights[:, :, :, level], value_map, grid, _BILINEAR, _ZEROS_PADDING, False, [True, True])
        # (N*M, D, H, W) -> (N, H*W, M, D)
        grad_values.append(grad_value_map.reshape(n, m, d, h * w).permute(0, 3, 1, 2))
        grad_grids.append(grad_grid)  # (N*M, Lq, P, 2)
    grad_value = torch.cat(grad_values, dim=1)
    # (N*M, Lq, L, P, 2) -> (N, Lq, M, L, P, 2); grid = 2 * location - 1
    grad_locations = (torch.stack(grad_grids, dim=2) * 2.0).view(n, m, lq, num_levels, num_points, 2).transpose(1, 2)
    grad_attention = torch.stack(grad_weights, dim=2).view(n, m, lq, num_levels, num_points).transpose(1, 2)
    return grad_value.contiguous(), grad_locations.contiguous(), grad_attention.contiguous()
