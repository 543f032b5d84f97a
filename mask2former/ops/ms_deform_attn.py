"""Multi-scale deformable attention, the sampling-and-weighting core (Deformable DETR, Zhu et al.,
ICLR 2021, Sec. 4.1, Eq. 3).

For every query q, head m, level l and point k, the head's value map of level l is sampled
bilinearly at the location p_{mqlk} and weighted by A_{mqlk}; the weighted samples are summed
over levels and points:

    out[n, q, m*D:(m+1)*D] = sum_{l, k} A[n, q, m, l, k] * bilinear(value_l[n, :, m, :], p[n, q, m, l, k])

:func:`ms_deform_attn` checks its inputs and runs :func:`ms_deform_attn_pytorch`, the pure-PyTorch
reference that compiled kernels (C++ CPU, CUDA) are tested against.

Conventions (those of the original kernels and of ``F.grid_sample(..., align_corners=False)``):
locations are normalized to [0, 1] x [0, 1] over each level's map, x (width) first, then y;
pixel (i, j) of an H x W map has its centre at ((j + 0.5) / W, (i + 0.5) / H); a sample's
neighbours outside the map count as zero.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["ms_deform_attn", "ms_deform_attn_pytorch"]


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
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    values_per_level = value.split([h * w for h, w in shapes], dim=1)
    # grid_sample's grid spans [-1, 1] over the map (align_corners=False: to the outer pixel edges)
    grids = sampling_locations * 2.0 - 1.0
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


def _check_kinds(tensors: dict) -> None:
    """Types, ranks, dtypes and devices of :func:`ms_deform_attn`'s arguments ({name: tensor})."""
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"ms_deform_attn: {name} must be a torch.Tensor, got {type(t).__name__}")
    expected_ranks = {"value": (4, "(N, S, M, D)"), "spatial_shapes": (2, "(L, 2)"), "level_start_index": (1, "(L,)"),
                      "sampling_locations": (6, "(N, Lq, M, L, P, 2)"), "attention_weights": (5, "(N, Lq, M, L, P)")}
    for name, (rank, layout) in expected_ranks.items():
        if tensors[name].dim() != rank:
            raise ValueError(f"ms_deform_attn: {name} must be {rank}-D {layout}, "
                             f"got shape {tuple(tensors[name].shape)}")

    for name in ("value", "sampling_locations", "attention_weights"):
        if not tensors[name].is_floating_point():
            raise TypeError(f"ms_deform_attn: {name} must be a floating-point tensor, got {tensors[name].dtype}")
    float_dtypes = {name: tensors[name].dtype for name in ("value", "sampling_locations", "attention_weights")}
    if len(set(float_dtypes.values())) > 1:
        raise TypeError(f"ms_deform_attn: value, sampling_locations and attention_weights must have one dtype, "
                        f"got {float_dtypes}")
    for name in ("spatial_shapes", "level_start_index"):
        t = tensors[name]
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"ms_deform_attn: {name} must be an integer tensor (int64), got {t.dtype}")
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValueError(f"ms_deform_attn: all inputs must be on one device, got {devices}")


def _check_sizes(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                 attention_weights: Tensor) -> None:
    """Sizes of :func:`ms_deform_attn`'s arguments against each other (ranks already checked)."""
    s = value.shape[1]
    num_levels = spatial_shapes.shape[0]
    if spatial_shapes.shape[1] != 2:
        raise ValueError(f"ms_deform_attn: spatial_shapes must be (L, 2) rows of (H, W), got shape "
                         f"{tuple(spatial_shapes.shape)}")
    if num_levels == 0:
        raise ValueError("ms_deform_attn: spatial_shapes has no level (L = 0)")
    sl, aw = sampling_locations.shape, attention_weights.shape
    if sl[-1] != 2:
        raise ValueError(f"ms_deform_attn: sampling_locations must end with a (x, y) pair, got shape {tuple(sl)}")
    for what, dim in (("N (batch)", 0), ("M (heads)", 2)):
        if sl[dim] != value.shape[dim] or aw[dim] != value.shape[dim]:
            raise ValueError(f"ms_deform_attn: {what}, dim {dim}, differs: value {tuple(value.shape)}, "
                             f"sampling_locations {tuple(sl)}, attention_weights {tuple(aw)}")
    if sl[3] != num_levels or aw[3] != num_levels or level_start_index.shape[0] != num_levels:
        raise ValueError(f"ms_deform_attn: L (levels) differs: spatial_shapes {tuple(spatial_shapes.shape)}, "
                         f"level_start_index {tuple(level_start_index.shape)}, sampling_locations {tuple(sl)} (dim 3), "
                         f"attention_weights {tuple(aw)} (dim 3)")
    if sl[1] != aw[1] or sl[4] != aw[4]:
        raise ValueError(f"ms_deform_attn: Lq (queries, dim 1) or P (points, dim 4) differ between "
                         f"sampling_locations {tuple(sl)} and attention_weights {tuple(aw)}")

    shapes = spatial_shapes.tolist()
    if any(h <= 0 or w <= 0 for h, w in shapes):
        raise ValueError(f"ms_deform_attn: spatial_shapes must be positive (H, W) pairs, got {shapes}")
    sizes = [h * w for h, w in shapes]
    if sum(sizes) != s:
        raise ValueError(f"ms_deform_attn: value has S = {s} positions but spatial_shapes {shapes} give "
                         f"sum(H * W) = {sum(sizes)}")
    starts = [sum(sizes[:i]) for i in range(num_levels)]
    if level_start_index.tolist() != starts:
        raise ValueError(f"ms_deform_attn: level_start_index {level_start_index.tolist()} is inconsistent with "
                         f"spatial_shapes {shapes}: expected the cumulative sizes starting at 0, {starts}")


def ms_deform_attn(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor) -> Tensor:
    """Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3), with input checks.

    Args:
        value: (N, S, M, D) float: batch N, S = sum_l H_l * W_l positions (each level flattened
            row-major, levels concatenated), M heads, D channels per head.
        spatial_shapes: (L, 2) integer (int64), (H_l, W_l) of each level, in pixels.
        level_start_index: (L,) integer (int64), the offset of each level in S: 0, H_0 W_0, ...
        sampling_locations: (N, Lq, M, L, P, 2) float, the (x, y) sampling points normalized to
            [0, 1] over each level's map (pixel centres at (j + 0.5) / W, (i + 0.5) / H); points
            outside the map read zeros.
        attention_weights: (N, Lq, M, L, P) float, the weight of each sample (usually a softmax
            over L * P).

    Returns:
        (N, Lq, M * D) tensor of ``value``'s dtype. Lq may be 0.

    Raises:
        TypeError: an argument is not a tensor; value / sampling_locations / attention_weights are
            not floating point or their dtypes differ; spatial_shapes / level_start_index are not
            integer tensors.
        ValueError: a rank is wrong; N, M, L, Lq or P disagree between arguments; the last
            dimension of spatial_shapes or sampling_locations is not 2; there is no level or a level
            is empty; S differs from sum(H * W); level_start_index is not the cumulative sizes
            starting at 0; the inputs are on different devices.
    """
    _check_kinds({"value": value, "spatial_shapes": spatial_shapes, "level_start_index": level_start_index,
                  "sampling_locations": sampling_locations, "attention_weights": attention_weights})
    _check_sizes(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
