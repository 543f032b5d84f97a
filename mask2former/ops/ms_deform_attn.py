"""Multi-scale deformable attention, the sampling-and-weighting core (Deformable DETR, Zhu et al.,
ICLR 2021, Sec. 4.1, Eq. 3).

For every query q, head m, level l and point k, the head's value map of level l is sampled
bilinearly at the location p_{mqlk} and weighted by A_{mqlk}; the weighted samples are summed
over levels and points:

    out[n, q, m*D:(m+1)*D] = sum_{l, k} A[n, q, m, l, k] * bilinear(value_l[n, :, m, :], p[n, q, m, l, k])

:func:`ms_deform_attn` checks its inputs and calls the registered operator
``torch.ops.mask2former.ms_deform_attn`` (:mod:`mask2former.ops.op`), which runs the fastest
implementation available for the inputs' device and dtype (:mod:`mask2former.ops.dispatch`: the C++
CPU kernel, the CUDA kernel, or the reference) and which ``torch.compile`` and ``torch.export`` keep
as one operator. :func:`ms_deform_attn_pytorch` is the pure-PyTorch reference that the kernels are
tested against (:mod:`mask2former.ops.reference`).

Conventions (those of the original kernels and of ``F.grid_sample(..., align_corners=False)``):
locations are normalized to [0, 1] x [0, 1] over each level's map, x (width) first, then y;
pixel (i, j) of an H x W map has its centre at ((j + 0.5) / W, (i + 0.5) / H); a sample's
neighbours outside the map count as zero.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import op as _op  # noqa: F401  (registers torch.ops.mask2former.ms_deform_attn)
from .checks import check_kinds, check_levels, check_sizes
from .reference import ms_deform_attn_pytorch, ms_deform_attn_pytorch_backward

__all__ = ["IMPLEMENTATIONS", "ms_deform_attn", "ms_deform_attn_pytorch", "ms_deform_attn_pytorch_backward"]

#: what ``impl`` may say: "auto", the registered operator (a compiled kernel where one is available,
#: else the reference); "pytorch", the reference called directly (no operator; for debugging)
IMPLEMENTATIONS = ("auto", "pytorch")


def ms_deform_attn(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor, *, impl: str = "auto") -> Tensor:
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
        impl: "auto" (default): the registered operator ``torch.ops.mask2former.ms_deform_attn``,
            which runs a compiled kernel where one is available for the device and dtype (the CPU
            kernel for float32 / float64 / bfloat16 and float16 computed in float32, the CUDA kernel
            for float16 / bfloat16 / float32 / float64), else the reference; ``MSDA_FORCE_PYTORCH=1``
            makes it run the reference. "pytorch": :func:`ms_deform_attn_pytorch` called directly.

    Returns:
        (N, Lq, M * D) tensor of ``value``'s dtype. Lq may be 0. Differentiable with respect to
        ``value``, ``sampling_locations`` and ``attention_weights``, also twice (``create_graph=True``
        computes the backward with the reference's differentiable backward; :mod:`.op`).
        Non-finite inputs as in the reference (``F.grid_sample``): a sampling location with a NaN or
        infinite coordinate (or one so large that ``2 * loc - 1`` or the pixel coordinate overflows
        the dtype, e.g. ``|loc| > 1.7e38`` in float32) makes the output of its (query, head) NaN in
        every channel; its gradients are NaN for the weight and for the other coordinate, 0 for the
        non-finite coordinate itself, and nothing for ``value``. A non-finite attention weight gives
        NaN or inf as the product does, also for a sample off the map (0 * inf).

    Raises:
        TypeError: an argument is not a tensor; value / sampling_locations / attention_weights are
            not floating point or their dtypes differ; spatial_shapes / level_start_index are not
            integer tensors.
        ValueError: a rank is wrong; N, M, L, Lq or P disagree between arguments; the last
            dimension of spatial_shapes or sampling_locations is not 2; there is no level; a level
            is not positive (H, W >= 1); S differs from sum(H * W) (computed without overflow);
            level_start_index is not the cumulative sizes starting at 0; the inputs are on different
            devices; ``impl`` is unknown. Every path checks the same: this function, the operator
            called directly (its implementation checks the values of spatial_shapes and
            level_start_index in Python on the reference path and in C++ in the kernels, also when
            it runs inside a torch.compile / torch.export graph), and the kernels themselves.

    Source: Deformable DETR (Zhu et al., ICLR 2021), Eq. 3.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"ms_deform_attn: impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    check_kinds({"value": value, "spatial_shapes": spatial_shapes, "level_start_index": level_start_index,
                 "sampling_locations": sampling_locations, "attention_weights": attention_weights})
    check_sizes(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    if impl == "pytorch":
        check_levels(value, spatial_shapes, level_start_index)
        return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    # the operator checks the values of spatial_shapes and level_start_index itself (the kernels in
    # C++, the reference path in Python), also inside compiled and exported graphs
    return torch.ops.mask2former.ms_deform_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                                attention_weights)
