"""The registered operators of multi-scale deformable attention (Deformable DETR, Zhu et al.,
ICLR 2021, Eq. 3), so that ``torch.compile`` and ``torch.export`` see one opaque operator:

- ``torch.ops.mask2former.ms_deform_attn(value, spatial_shapes, level_start_index,
  sampling_locations, attention_weights) -> Tensor``, differentiable with respect to ``value``,
  ``sampling_locations`` and ``attention_weights``;
- ``torch.ops.mask2former.ms_deform_attn_backward(grad_output, value, spatial_shapes,
  level_start_index, sampling_locations, attention_weights) -> (grad_value, grad_sampling_locations,
  grad_attention_weights)``, its backward (itself an operator, so compiled and exported training
  graphs contain it); not differentiable again.

Both are defined with ``torch.library`` (a ``Library("mask2former", "DEF")``), with one Python
implementation for every device that runs the implementation :mod:`mask2former.ops.dispatch` selects
(a compiled kernel, ``torch.ops.mask2former_kernels.*``, or the PyTorch reference,
:mod:`mask2former.ops.reference`), a fake (meta) implementation giving the output shapes to
``torch.compile`` / ``torch.export``, and autograd. They check nothing beyond what the kernels
check: call them through :func:`mask2former.ops.ms_deform_attn`, which checks its inputs.

torch >= 2.4 registers the fake implementation and autograd with ``torch.library.register_fake`` /
``register_autograd``; older versions (2.1 to 2.3) with ``torch.library.impl_abstract`` (or a Meta
kernel) and an ``Autograd`` kernel wrapping a ``torch.autograd.Function``.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

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


def _forward(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
             attention_weights: Tensor) -> Tensor:
    impl = select_implementation(value.device, value.dtype)
    if not impl.is_kernel:
        return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    out = torch.ops.mask2former_kernels.ms_deform_attn_forward(
        *_kernel_inputs(impl, value, spatial_shapes, level_start_index, sampling_locations, attention_weights))
    return out.to(value.dtype)


def _backward(grad_output: Tensor, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
              sampling_locations: Tensor, attention_weights: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    impl = select_implementation(value.device, value.dtype)
    if not impl.is_kernel:
        return ms_deform_attn_pytorch_backward(grad_output.to(value.dtype), value, spatial_shapes, level_start_index,
                                               sampling_locations, attention_weights)
    grad_value, grad_locations, grad_weights = torch.ops.mask2former_kernels.ms_deform_attn_backward(
        *_kernel_inputs(impl, grad_output.to(value.dtype), value, spatial_shapes, level_start_index,
                        sampling_locations, attention_weights))
    return grad_value.to(value.dtype), grad_locations.to(value.dtype), grad_weights.to(value.dtype)


def _forward_fake(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                  attention_weights: Tensor) -> Tensor:
    n, _, m, d = value.shape
    return value.new_empty((n, sampling_locations.shape[1], m * d))


def _backward_fake(grad_output: Tensor, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                   sampling_locations: Tensor, attention_weights: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    return (torch.empty_like(value, memory_format=torch.contiguous_format),
            torch.empty_like(sampling_locations, memory_format=torch.contiguous_format),
            torch.empty_like(attention_weights, memory_format=torch.contiguous_format))


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _autograd_backward(ctx, grad_output: Tensor):
    value, spatial_shapes, level_start_index, sampling_locations, attention_weights = ctx.saved_tensors
    grad_value, grad_locations, grad_weights = _OPS.ms_deform_attn_backward(
        grad_output, value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    return grad_value, None, None, grad_locations, grad_weights


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
