"""Helpers of the multi-scale deformable attention tests: the reference's output and gradients, the
operator's, and comparisons whose verdict holds on any CPU:

- NaN-aware: the NaNs (and infinities) must be in the same places, the finite entries close;
- tolerances relative to the size of the expected values (sums in another order round differently);
- the gradient of a location coordinate is discontinuous where that pixel coordinate is an integer
  (the bilinear corners change there): :func:`location_ties` finds those entries so that a
  comparison can leave them out, since which side a rounding lands on depends on the arithmetic
  (FMA or not, vector width) of the kernel and of ``F.grid_sample``.
"""
from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import pytest
import torch
from torch import Tensor

from mask2former.ops import dispatch, ms_deform_attn_pytorch

#: float entries of the five arguments (value, locations, weights) in argument order
FLOAT_ARGS = (0, 3, 4)
GRAD_NAMES = ("value", "sampling_locations", "attention_weights")

CPU_KERNEL = dispatch.kernel_status("cpu")[0]
needs_cpu_kernel = pytest.mark.skipif(not CPU_KERNEL, reason="CPU kernel not built")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
#: the kernels' devices, as a parameter: the CPU kernel (when built) and CUDA (on a GPU machine)
KERNEL_DEVICES = [pytest.param("cpu", marks=needs_cpu_kernel), pytest.param("cuda", marks=needs_cuda)]


def level_inputs(shapes: Sequence[Tuple[int, int]]) -> Tuple[Tensor, Tensor]:
    """(spatial_shapes (L, 2) int64, level_start_index (L,) int64) of consistent levels."""
    spatial_shapes = torch.tensor(list(shapes), dtype=torch.int64).view(-1, 2)
    sizes = spatial_shapes.prod(1)
    return spatial_shapes, torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))


def outputs_and_grads(fn: Callable, args: Sequence[Tensor], grad: Tensor, dtype=None, device=None):
    """fn(*args)'s output and the autograd gradients of <output, grad> with respect to value,
    sampling_locations and attention_weights (None where a gradient does not reach), with the float
    arguments cast to ``dtype`` and everything moved to ``device`` first when given. Returned on the
    CPU, detached."""
    args = [t.to(device) if device is not None else t for t in args]
    grad = grad.to(device) if device is not None else grad
    leaves = {}
    call = list(args)
    for i in FLOAT_ARGS:
        t = args[i].detach()
        t = t.to(dtype) if dtype is not None else t
        leaves[i] = call[i] = t.clone().requires_grad_(True)
    out = fn(*call)
    out.backward(grad.to(out.dtype))
    return out.detach().cpu(), [None if leaves[i].grad is None else leaves[i].grad.cpu() for i in FLOAT_ARGS]


def reference_and_grads(args: Sequence[Tensor], grad: Tensor, dtype=None):
    """The reference (:func:`ms_deform_attn_pytorch`) and its gradients, on the CPU, in ``dtype``
    (default: the arguments' dtype)."""
    return outputs_and_grads(ms_deform_attn_pytorch, [t.cpu() for t in args], grad.cpu(), dtype=dtype)


def operator_and_grads(args: Sequence[Tensor], grad: Tensor, fn: Callable = None, device=None):
    """The registered operator (or ``fn``) and its gradients."""
    return outputs_and_grads(fn or torch.ops.mask2former.ms_deform_attn, args, grad, device=device)


def location_ties(locations: Tensor, spatial_shapes: Tensor, margin: float = 1e-3) -> Tensor:
    """(N, Lq, M, L, P, 2) bool: where a location's pixel coordinate (float64: x * W - 0.5, y * H - 0.5)
    lies within ``margin`` of an integer, i.e. where the gradient of that coordinate jumps."""
    size = spatial_shapes.flip(-1).to(torch.float64).cpu()  # (L, 2) = (W, H)
    pixel = locations.detach().cpu().to(torch.float64) * size[None, None, None, :, None, :] - 0.5
    return (pixel - pixel.round()).abs() < margin


def assert_nan_aware_close(actual: Tensor, expected: Tensor, *, rtol: float, atol: float, what: str = "",
                           ignore: Tensor = None) -> None:
    """NaNs and infinities in the same places, and |actual - expected| <= atol * (1 + max |expected|) +
    rtol * |expected| at the finite entries (``atol`` is relative to the scale of the expected values).
    ``ignore``: entries left out (e.g. :func:`location_ties`)."""
    actual, expected = actual.detach().cpu().to(torch.float64), expected.detach().cpu().to(torch.float64)
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    keep = torch.ones_like(expected, dtype=torch.bool) if ignore is None else ~ignore.expand_as(expected)
    nan_a, nan_e = actual.isnan() & keep, expected.isnan() & keep
    assert torch.equal(nan_a, nan_e), (f"{what}: NaN at {(nan_a & ~nan_e).nonzero()[:5].tolist()} (kernel only), "
                                       f"{(nan_e & ~nan_a).nonzero()[:5].tolist()} (reference only)")
    inf_e = expected.isinf() & keep
    assert torch.equal(actual.isinf() & keep, inf_e), f"{what}: infinities differ"
    assert torch.equal(actual[inf_e], expected[inf_e]), f"{what}: infinities of another sign"
    finite = keep & expected.isfinite()
    if not finite.any():
        return
    a, e = actual[finite], expected[finite]
    bound = atol * (1.0 + e.abs().max().item()) + rtol * e.abs()
    err = (a - e).abs()
    worst = int((err - bound).argmax())
    assert bool((err <= bound).all()), (f"{what}: |{a[worst].item():.8g} - {e[worst].item():.8g}| = "
                                        f"{err[worst].item():.3g} > {bound[worst].item():.3g}")


def assert_matches(actual: Tuple[Tensor, List[Tensor]], expected: Tuple[Tensor, List[Tensor]], locations: Tensor,
                   spatial_shapes: Tensor, *, rtol: float, atol: float, what: str = "") -> None:
    """(output, [grad_value, grad_locations, grad_weights]) against the expected ones, NaN-aware,
    the location gradients away from ties."""
    assert_nan_aware_close(actual[0], expected[0], rtol=rtol, atol=atol, what=f"{what} output")
    ties = location_ties(locations, spatial_shapes)
    for got, want, name in zip(actual[1], expected[1], GRAD_NAMES):
        assert got is not None and want is not None, f"{what} {name}: no gradient"
        assert_nan_aware_close(got, want, rtol=rtol, atol=atol, what=f"{what} grad {name}",
                               ignore=ties if name == "sampling_locations" else None)
