"""The registered operators of multi-scale deformable attention (Deformable DETR, Zhu et al.,
ICLR 2021, Eq. 3), so that ``torch.compile`` and ``torch.export`` see one opaque operator:

- ``torch.ops.mask2former.ms_deform_attn(value, spatial_shapes, level_start_index,
  sampling_locations, attention_weights) -> Tensor``, differentiable with respect to ``value``,
  ``sampling_locations`` and ``attention_weights``, twice and more (see "Double backward");
- ``torch.ops.mask2former.ms_deform_attn_backward(grad_output, value, spatial_shapes,
  level_start_index, sampling_locations, attention_weights) -> (grad_value, grad_sampling_locations,
  grad_attention_weights)``, its backward (itself an operator, so compiled and exported training
  graphs contain it). Differentiating it directly raises a RuntimeError (differentiate the forward
  operator instead).

Both are defined with ``torch.library`` (a ``Library("mask2former", "DEF")``), with one Python
implementation for every device that runs the implementation :mod:`mask2former.ops.dispatch` selects
(a compiled kernel, ``torch.ops.mask2former_kernels.*``, or the PyTorch reference,
:mod:`mask2former.ops.reference`), a fake (meta) implementation giving the output shapes to
``torch.compile`` / ``torch.export``, and autograd.

Input checks (:mod:`mask2former.ops.checks`) hold however the operators are called (eagerly,
through :func:`mask2former.ops.ms_deform_attn` or directly, compiled or exported): the
implementation checks types, ranks and sizes, then the values of ``spatial_shapes`` and
``level_start_index`` (the reference path in Python, the kernels in C++, the same rules); it runs
with real tensors also inside compiled and exported graphs. The fake implementation checks types,
ranks and sizes while tracing (``torch._check_value``, which also holds for symbolic sizes), and
the level values where they are known then (tensors with data; fake tensors carry none).

Double backward: the compiled kernels' backward is not differentiable. When the backward runs
with grad mode on and something to differentiate (``create_graph=True``: ``gradgradcheck``,
gradient penalties, Hessian-vector products), it is computed with the reference's written-out
backward (:func:`mask2former.ops.reference.ms_deform_attn_pytorch_backward`: ``F.grid_sample`` and
``aten.grid_sampler_2d_backward``, both differentiable), so autograd records a differentiable
graph; otherwise it runs the backward operator (the kernel). ``torch.compile`` does not support
double backward (AOTAutograd raises its own error).

torch >= 2.4 registers the fake implementation and autograd with ``torch.library.register_fake`` /
``register_autograd``; older versions (2.1 to 2.3) with ``torch.library.impl_abstract`` (or a Meta
kernel) and an ``Autograd`` kernel wrapping a ``torch.autograd.Function``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .checks import check_grad_output, check_kinds, check_levels, check_sizes, known_values, require
from .dispatch import Implementation, select_implementation
from .reference import ms_deform_attn_pytorch, ms_deform_attn_pytorch_backward

__all__ = ["NAMESPACE", "ms_deform_attn_backward_op", "ms_deform_attn_op"]

NAMESPACE = "mask2former"

_FORWARD_SCHEMA = ("ms_deform_attn(Tensor value, Tensor spatial_shapes, Tensor level_start_index, "
                   "Tensor sampling_locations, Tensor attention_weights) -> Tensor")
_BACKWARD_SCHEMA = ("ms_deform_attn_backward(Tensor grad_output, Tensor value, Tensor spatial_shapes, "
                    "Tensor level_start_index, Tensor sampling_locations, Tensor attention_weights) "
                    "-> (Tensor, Tensor, Tensor)")


def _kernel_inputs(impl: Implementation, *tensors: Tensor):
    """The kernels take contiguous tensors, int64 shapes and the compute dtype; ``tensors`` are
    (float..., spatial_shapes, level_start_index, float...) in schema order."""
    out = []
    for t in tensors:
        if not t.is_floating_point():
            t = t.long()
        elif impl.compute_dtype is not None:
            t = t.to(impl.compute_dtype)
        out.append(t.contiguous())
    return out


def _check(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
           attention_weights: Tensor, grad_output: Optional[Tensor] = None, *, check=require) -> None:
    """Types, ranks and sizes (no values): what every implementation and the fake one check first."""
    check_kinds({"value": value, "spatial_shapes": spatial_shapes, "level_start_index": level_start_index,
                 "sampling_locations": sampling_locations, "attention_weights": attention_weights})
    check_sizes(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, check=check)
    if grad_output is not None:
        check_grad_output(grad_output, value, sampling_locations, check=check)


def _forward(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
             attention_weights: Tensor) -> Tensor:
    _check(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    impl = select_implementation(value.device, value.dtype)
    if not impl.is_kernel:
        check_levels(value, spatial_shapes, level_start_index)  # the kernels check the same in C++
        return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    out = torch.ops.mask2former_kernels.ms_deform_attn_forward(
        *_kernel_inputs(impl, value, spatial_shapes, level_start_index, sampling_locations, attention_weights))
    return out.to(value.dtype)


def _backward(grad_output: Tensor, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
              sampling_locations: Tensor, attention_weights: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    _check(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, grad_output)
    impl = select_implementation(value.device, value.dtype)
    if not impl.is_kernel:
        check_levels(value, spatial_shapes, level_start_index)
        return ms_deform_attn_pytorch_backward(grad_output.to(value.dtype), value, spatial_shapes, level_start_index,
                                               sampling_locations, attention_weights)
    grad_value, grad_locations, grad_weights = torch.ops.mask2former_kernels.ms_deform_attn_backward(
        *_kernel_inputs(impl, grad_output.to(value.dtype), value, spatial_shapes, level_start_index,
                        sampling_locations, attention_weights))
    return grad_value.to(value.dtype), grad_locations.to(value.dtype), grad_weights.to(value.dtype)


def _check_known_levels(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor) -> None:
    """The level checks in the fake implementation, where the values are known (tensors with data,
    not fake ones) and S is not symbolic; the implementation checks them at run time in any case."""
    shapes, starts = known_values(spatial_shapes), known_values(level_start_index)
    if shapes is not None and starts is not None and isinstance(value.shape[1], int):
        check_levels(value, spatial_shapes, level_start_index, shapes=shapes, starts=starts)


def _forward_fake(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                  attention_weights: Tensor) -> Tensor:
    _check(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, check=torch._check_value)
    _check_known_levels(value, spatial_shapes, level_start_index)
    n, _, m, d = value.shape
    return value.new_empty((n, sampling_locations.shape[1], m * d))


def _backward_fake(grad_output: Tensor, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                   sampling_locations: Tensor, attention_weights: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    _check(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, grad_output,
           check=torch._check_value)
    _check_known_levels(value, spatial_shapes, level_start_index)
    return (torch.empty_like(value, memory_format=torch.contiguous_format),
            torch.empty_like(sampling_locations, memory_format=torch.contiguous_format),
            torch.empty_like(attention_weights, memory_format=torch.contiguous_format))


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _autograd_backward(ctx, grad_output: Tensor):
    value, spatial_shapes, level_start_index, sampling_locations, attention_weights = ctx.saved_tensors
    if torch.is_grad_enabled() and any(t.requires_grad for t in (grad_output, value, sampling_locations,
                                                                  attention_weights)):
        # create_graph=True: the backward itself is differentiated. The kernels' backward is not
        # differentiable; the reference's written-out backward is (F.grid_sample and its backward).
        impl = select_implementation(value.device, value.dtype)
        compute = impl.compute_dtype or value.dtype
        floats = [t.to(compute) for t in (grad_output.to(value.dtype), value, sampling_locations, attention_weights)]
        grads = ms_deform_attn_pytorch_backward(floats[0], floats[1], spatial_shapes, level_start_index, floats[2],
                                                floats[3])
        grad_value, grad_locations, grad_weights = (g.to(value.dtype) for g in grads)
    else:
        grad_value, grad_locations, grad_weights = _OPS.ms_deform_attn_backward(
            grad_output, value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    return grad_value, None, None, grad_locations, grad_weights


def _setup_backward_context(ctx, inputs, output) -> None:
    pass


def _backward_of_backward(ctx, *grads):
    raise RuntimeError(
        "ms_deform_attn: torch.ops.mask2former.ms_deform_attn_backward is not differentiable. Double backward of "
        "multi-scale deformable attention is supported through the forward operator: differentiate "
        "torch.ops.mask2former.ms_deform_attn (or mask2former.ops.ms_deform_attn) with create_graph=True, or "
        "differentiate mask2former.ops.ms_deform_attn_pytorch_backward.")


_OPS = getattr(torch.ops, NAMESPACE)  # the namespace's operators, looked up when called
_library = torch.library.Library(NAMESPACE, "DEF")
_library.define(_FORWARD_SCHEMA)
_library.define(_BACKWARD_SCHEMA)
# one implementation for every device: it picks the kernel of the inputs' device or the reference
_library.impl("ms_deform_attn", _forward, "CompositeExplicitAutograd")
_library.impl("ms_deform_attn_backward", _backward, "CompositeExplicitAutograd")

if hasattr(torch.library, "register_fake"):  # torch >= 2.4
    torch.library.register_fake(f"{NAMESPACE}::ms_deform_attn", _forward_fake, lib=_library)
    torch.library.register_fake(f"{NAMESPACE}::ms_deform_attn_backward", _backward_fake, lib=_library)
elif hasattr(torch.library, "impl_abstract"):  # torch 2.2, 2.3
    torch.library.impl_abstract(f"{NAMESPACE}::ms_deform_attn", _forward_fake, lib=_library)
    torch.library.impl_abstract(f"{NAMESPACE}::ms_deform_attn_backward", _backward_fake, lib=_library)
else:  # torch 2.1: fake tensors fall back to the Meta kernel
    _library.impl("ms_deform_attn", _forward_fake, "Meta")
    _library.impl("ms_deform_attn_backward", _backward_fake, "Meta")

if hasattr(torch.library, "register_autograd"):  # torch >= 2.4
    torch.library.register_autograd(f"{NAMESPACE}::ms_deform_attn", _autograd_backward,
                                    setup_context=_setup_context, lib=_library)
    torch.library.register_autograd(f"{NAMESPACE}::ms_deform_attn_backward", _backward_of_backward,
                                    setup_context=_setup_backward_context, lib=_library)
else:
    class _MSDeformAttnFunction(torch.autograd.Function):
        """Autograd for torch < 2.4: the operator below autograd, then its backward operator."""

        @staticmethod
        def forward(ctx, value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
            with torch._C._AutoDispatchBelowAutograd():
                output = _OPS.ms_deform_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                             attention_weights)
            _setup_context(ctx, (value, spatial_shapes, level_start_index, sampling_locations, attention_weights),
                           output)
            return output

        @staticmethod
        def backward(ctx, grad_output):
            return _autograd_backward(ctx, grad_output)

    _library.impl("ms_deform_attn", _MSDeformAttnFunction.apply, "Autograd")

#: the operators (OpOverloadPacket), for graphs and tests
ms_deform_attn_op = _OPS.ms_deform_attn
ms_deform_attn_backward_op = _OPS.ms_deform_attn_backward
