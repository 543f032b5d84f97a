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
from .reference import ms_deform_attn_pytorch, ms_deform_attn_pytorch_backward

__all__ = ["IMPLEMENTATIONS", "ms_deform_attn", "ms_deform_attn_pytorch", "ms_deform_attn_pytorch_backward"]

#: what ``impl`` may say: "auto", the registered operator (a compiled kernel where one is available,
#: else the reference); "pytorch", the reference called directly (no operator; for debugging)
IMPLEMENTATIONS = ("auto", "pytorch")


def _is_compiling() -> bool:
    """Whether torch.compile / torch.export is tracing (the inputs' values are then unknown)."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):  # torch >= 2.3
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()


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


def _check_levels(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor) -> None:
    """The values of spatial_shapes and level_start_index against value's S (sizes already checked)."""
    s = value.shape[1]
    num_levels = spatial_shapes.shape[0]
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
        ``value``, ``sampling_locations`` and ``attention_weights`` (once).

    Raises:
        TypeError: an argument is not a tensor; value / sampling_locations / attention_weights are
            not floating point or their dtypes differ; spatial_shapes / level_start_index are not
            integer tensors.
        ValueError: a rank is wrong; N, M, L, Lq or P disagree between arguments; the last
            dimension of spatial_shapes or sampling_locations is not 2; there is no level or a level
            is empty; S differs from sum(H * W); level_start_index is not the cumulative sizes
            starting at 0; the inputs are on different devices; ``impl`` is unknown. Under
            torch.compile / torch.export the checks that read the values of spatial_shapes and
            level_start_index are skipped (the values are unknown while tracing).

    Source: Deformable DETR (Zhu et al., ICLR 2021), Eq. 3.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"ms_deform_attn: impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    _check_kinds({"value": value, "spatial_shapes": spatial_shapes, "level_start_index": level_start_index,
                  "sampling_locations": sampling_locations, "attention_weights": attention_weights})
    _check_sizes(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    if not _is_compiling():
        _check_levels(value, spatial_shapes, level_start_index)
    if impl == "pytorch":
        return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    return torch.ops.mask2former.ms_deform_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                                attention_weights)
