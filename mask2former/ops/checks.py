"""Input checks of multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3),
shared by :func:`mask2former.ops.ms_deform_attn`, the registered operators (:mod:`.op`: their
implementation and their fake implementation for ``torch.compile`` / ``torch.export``) and, in the
same order and words, by the compiled kernels (``csrc/ms_deform_attn.h``, ``check_inputs``), so
that every implementation rejects the same inputs with the same kind of error.

- :func:`check_kinds`: types, ranks, dtypes and devices;
- :func:`check_sizes`: the sizes of the arguments against each other (in the fake implementation
  with ``torch._check_value``, so that they also hold for symbolic sizes under
  ``torch.compile(dynamic=True)`` / ``torch.export``);
- :func:`check_levels`: the values of ``spatial_shapes`` and ``level_start_index`` against
  ``value``'s S. These need the values: they run where the tensors hold data (eager calls, and the
  operator's implementation, which runs with real tensors also inside compiled and exported
  graphs), not on fake tensors while tracing (see :func:`known_values`).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor

__all__ = ["check_grad_output", "check_kinds", "check_levels", "check_sizes", "known_values", "require"]

_LAYOUTS = {"value": (4, "(N, S, M, D)"), "spatial_shapes": (2, "(L, 2)"), "level_start_index": (1, "(L,)"),
            "sampling_locations": (6, "(N, Lq, M, L, P, 2)"), "attention_weights": (5, "(N, Lq, M, L, P)")}
_FLOAT_ARGS = ("value", "sampling_locations", "attention_weights")
_INDEX_ARGS = ("spatial_shapes", "level_start_index")


def check_kinds(tensors: Dict[str, Tensor]) -> None:
    """Types, ranks, dtypes and devices of the five arguments.

    Args:
        tensors: {"value", "spatial_shapes", "level_start_index", "sampling_locations",
            "attention_weights"}: the arguments of :func:`mask2former.ops.ms_deform_attn`.

    Raises:
        TypeError: an argument is not a tensor; value / sampling_locations / attention_weights are
            not floating point or their dtypes differ; spatial_shapes / level_start_index are not
            integer tensors.
        ValueError: a rank is wrong, or the tensors are on different devices.
    """
    for name in _LAYOUTS:
        if not isinstance(tensors[name], Tensor):
            raise TypeError(f"ms_deform_attn: {name} must be a torch.Tensor, got {type(tensors[name]).__name__}")
    for name, (rank, layout) in _LAYOUTS.items():
        if tensors[name].dim() != rank:
            raise ValueError(f"ms_deform_attn: {name} must be {rank}-D {layout}, "
                             f"got shape {tuple(tensors[name].shape)}")
    for name in _FLOAT_ARGS:
        if not tensors[name].is_floating_point():
            raise TypeError(f"ms_deform_attn: {name} must be a floating-point tensor, got {tensors[name].dtype}")
    float_dtypes = {name: tensors[name].dtype for name in _FLOAT_ARGS}
    if len(set(float_dtypes.values())) > 1:
        raise TypeError(f"ms_deform_attn: value, sampling_locations and attention_weights must have one dtype, "
                        f"got {float_dtypes}")
    for name in _INDEX_ARGS:
        t = tensors[name]
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"ms_deform_attn: {name} must be an integer tensor (int64), got {t.dtype}")
    devices = {name: tensors[name].device for name in _LAYOUTS}
    if len(set(devices.values())) > 1:
        raise ValueError(f"ms_deform_attn: all inputs must be on one device, got {devices}")


def require(condition, message: Callable[[], str]) -> None:
    """Raises ValueError(message()) unless ``condition``: the plain check, which Dynamo traces (it
    cannot trace ``torch._check_value``'s message closures)."""
    if not condition:
        raise ValueError(message())


def check_sizes(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                attention_weights: Tensor, *, check: Callable = require) -> None:
    """The sizes of the arguments against each other (ranks already checked by :func:`check_kinds`).

    Args:
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights: the
            arguments of :func:`mask2former.ops.ms_deform_attn`.
        check: ``check(condition, message_fn)`` raising ValueError: :func:`require` (eager code and
            code that Dynamo traces), or ``torch._check_value`` (fake implementations: with symbolic
            sizes a condition becomes a guard or a runtime assertion instead of failing to trace).

    Raises:
        ValueError: the last dimension of spatial_shapes or sampling_locations is not 2; there is no
            level (L = 0); N, M, L, Lq or P disagree between the arguments.
    """
    sl, aw = sampling_locations.shape, attention_weights.shape
    check(spatial_shapes.shape[1] == 2, lambda: (
        f"ms_deform_attn: spatial_shapes must be (L, 2) rows of (H, W), got shape {tuple(spatial_shapes.shape)}"))
    num_levels = spatial_shapes.shape[0]
    check(num_levels != 0, lambda: "ms_deform_attn: spatial_shapes has no level (L = 0)")
    check(sl[5] == 2, lambda: (
        f"ms_deform_attn: sampling_locations must end with a (x, y) pair, got shape {tuple(sl)}"))
    for what, dim in (("N (batch)", 0), ("M (heads)", 2)):
        check(sl[dim] == value.shape[dim] and aw[dim] == value.shape[dim], lambda: (
            f"ms_deform_attn: {what}, dim {dim}, differs: value {tuple(value.shape)}, sampling_locations {tuple(sl)}, "
            f"attention_weights {tuple(aw)}"))
    check(sl[3] == num_levels and aw[3] == num_levels and level_start_index.shape[0] == num_levels,
                       lambda: (f"ms_deform_attn: L (levels) differs: spatial_shapes {tuple(spatial_shapes.shape)}, "
                                f"level_start_index {tuple(level_start_index.shape)}, sampling_locations {tuple(sl)} "
                                f"(dim 3), attention_weights {tuple(aw)} (dim 3)"))
    check(sl[1] == aw[1] and sl[4] == aw[4], lambda: (
        f"ms_deform_attn: Lq (queries, dim 1) or P (points, dim 4) differ between sampling_locations {tuple(sl)} "
        f"and attention_weights {tuple(aw)}"))


def check_grad_output(grad_output: Tensor, value: Tensor, sampling_locations: Tensor, *,
                      check: Callable = require) -> None:
    """The backward's ``grad_output``: a floating-point (N, Lq, M * D) tensor on value's device
    (``check`` as for :func:`check_sizes`).

    Raises:
        TypeError: grad_output is not a floating-point tensor.
        ValueError: its shape is not the output's, or it is on another device.
    """
    if not isinstance(grad_output, Tensor) or not grad_output.is_floating_point():
        raise TypeError(f"ms_deform_attn backward: grad_output must be a floating-point tensor, got "
                        f"{getattr(grad_output, 'dtype', type(grad_output).__name__)}")
    n, _, m, d = value.shape
    expected = (n, sampling_locations.shape[1], m * d)
    check(grad_output.dim() == 3 and tuple(grad_output.shape) == expected, lambda: (
        f"ms_deform_attn backward: grad_output must be (N, Lq, M * D) = {expected} like the output, got "
        f"{tuple(grad_output.shape)}"))
    if grad_output.device != value.device:
        raise ValueError(f"ms_deform_attn backward: grad_output is on {grad_output.device}, value on {value.device}")


def known_values(t: Tensor) -> Optional[List]:
    """``t.tolist()`` where the values exist (a tensor with data), None where they are unknown: fake
    tensors (``torch.compile`` / ``torch.export`` tracing; this torch records no constants in them)
    and meta tensors."""
    if t.device.type == "meta":
        return None
    try:
        from torch._subclasses.fake_tensor import is_fake
    except ImportError:  # pragma: no cover (torch builds without fake tensors)
        return t.tolist()
    return None if is_fake(t) else t.tolist()


def check_levels(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, *,
                 shapes: Optional[List] = None, starts: Optional[List] = None) -> None:
    """The values of spatial_shapes and level_start_index against value's S (sizes already
    checked), level by level in the order of the kernels' check (``csrc/ms_deform_attn.h``), so that
    an input with several faults gets the same complaint from every implementation.

    For each level l: H_l >= 1 and W_l >= 1; level_start_index[l] equals sum_{i < l} H_i W_i (the
    cumulative sizes starting at 0); H_l W_l fits in what remains of S. Finally sum_l H_l W_l == S.
    (Python integers do not overflow; the kernels check the same without overflowing int64.)

    Args:
        value: (N, S, M, D). spatial_shapes: (L, 2) integer. level_start_index: (L,) integer.
        shapes, starts: their values as lists, when the caller already has them.

    Raises:
        ValueError: a level is empty or negative; level_start_index is not the cumulative sizes;
            sum(H * W) differs from S.
    """
    s = value.shape[1]
    shapes = spatial_shapes.tolist() if shapes is None else shapes
    starts = level_start_index.tolist() if starts is None else starts
    total = 0
    for level, ((h, w), start) in enumerate(zip(shapes, starts)):
        if h <= 0 or w <= 0:
            raise ValueError(f"ms_deform_attn: spatial_shapes must be positive (H, W) pairs, got {shapes} "
                             f"(level {level})")
        if start != total:
            expected = [sum(hh * ww for hh, ww in shapes[:i]) for i in range(len(shapes))]
            raise ValueError(f"ms_deform_attn: level_start_index {starts} is inconsistent with spatial_shapes "
                             f"{shapes}: expected the cumulative sizes starting at 0, {expected} (level {level})")
        total += h * w
        if total > s:
            raise ValueError(f"ms_deform_attn: value has S = {s} positions but spatial_shapes {shapes} give "
                             f"sum(H * W) = {sum(hh * ww for hh, ww in shapes)} (level {level} ends at {total})")
    if total != s:
        raise ValueError(f"ms_deform_attn: value has S = {s} positions but spatial_shapes {shapes} give "
                         f"sum(H * W) = {total}")
