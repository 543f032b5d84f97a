"""Non-finite and huge sampling locations and attention weights: the kernels give what the reference
(F.grid_sample on the grid 2 * loc - 1) gives, values and gradients, NaN for NaN.

The rules (mask2former/ops/csrc/ms_deform_attn.h, DEVELOPING.md): a location whose pixel coordinate
x or y is not finite in the compute dtype (NaN, +-inf, or finite but overflowing the reference's
arithmetic, e.g. |loc| > 1.7e38 in float32) makes its sample NaN, so the row's output (every channel)
and the weight's gradient are NaN; grad_value receives nothing from it; the gradient of x is NaN
when y is not finite, else 0, and the gradient of y is NaN when x is not finite, else 0. A finite
location off the map samples 0; a non-finite attention weight times that 0 is NaN.
"""
import itertools
import platform

import pytest
import torch

from mask2former.ops import ms_deform_attn
from tests.mask2former.ops.msda_helpers import (
    KERNEL_DEVICES,
    assert_matches,
    level_inputs,
    needs_cpu_kernel,
    operator_and_grads,
    reference_and_grads,
)
NAN, INF = float("nan"), float("inf")

#: normalized coordinates: non-finite, huge (overflowing float32's grid 2 * loc - 1, or not), far
#: outside, on the border (0, 1), inside away from pixel-coordinate ties, just outside
SPECIALS = [NAN, INF, -INF, 3e38, -3e38, 1.7e38, 1e30, -1e30, 1e10, -7.0, 0.0, 1.0, 0.3, 0.61, 1.2]
MAPS = [(3, 4), (1, 1), (1, 5), (4, 1)]
WEIGHTS = [0.7, 0.0, NAN, INF, -INF]


def special_args(h, w, weight, dtype, channels=3, seed=0):
    """One query per (x, y) pair of SPECIALS on an h x w map, 2 heads, every weight ``weight``."""
    g = torch.Generator().manual_seed(seed)
    pairs = torch.tensor(list(itertools.product(SPECIALS, SPECIALS)), dtype=torch.float64)
    q = pairs.shape[0]
    shapes, starts = level_inputs([(h, w)])
    locations = pairs.view(1, q, 1, 1, 1, 2).expand(1, q, 2, 1, 1, 2).to(dtype).contiguous()
    value = torch.randn(1, h * w, 2, channels, generator=g, dtype=torch.float64).to(dtype)
    weights = torch.full((1, q, 2, 1, 1), weight, dtype=dtype)
    grad = torch.randn(1, q, 2 * channels, generator=g, dtype=torch.float64).to(dtype)
    return [value, shapes, starts, locations, weights], grad


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("hw", MAPS)
def test_kernel_matches_reference_at_special_locations(hw, weight, dtype, device):
    args, grad = special_args(*hw, weight, dtype)
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_matches(operator_and_grads(args, grad, device=device), reference_and_grads(args, grad), args[3], args[1],
                   rtol=rtol, atol=rtol, what=f"{device} {hw} a={weight} {dtype}")


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("weight", [0.7, NAN, INF])
def test_half_precision_follows_float32(dtype, weight, device):
    """bfloat16 and float16 compute in float32 (on the CPU: the kernel's bfloat16 variant, and the
    float32 kernel for float16): the float32 reference on the upcast inputs, NaNs included. (The
    bfloat16 reference is no oracle there: torch's bfloat16 grid_sample reads a pixel for huge and
    non-finite coordinates.)"""
    args, grad = special_args(3, 4, weight, dtype)
    got = operator_and_grads(args, grad, device=device)
    assert got[0].dtype == dtype
    expected = reference_and_grads(args, grad, dtype=torch.float32)
    assert_matches(got, expected, args[3], args[1], rtol=1e-2, atol=1e-2, what=f"{device} {dtype}")


def _non_finite_coordinates(locations, spatial_shapes):
    """(bad, bad_x, bad_y), (1, Q, M, 1, 1) bool: where the pixel coordinate x, y is not finite in the
    locations' dtype (computed as the reference computes it: grid = 2 * loc - 1, then
    (grid + 1) * size / 2 - 0.5), and where either is."""
    h, w = spatial_shapes[0].tolist()

    def pixel(loc, size):
        return (((loc * 2 - 1) + 1) * (size / 2) - 0.5).isfinite().logical_not()

    bad_x, bad_y = pixel(locations[..., 0], w), pixel(locations[..., 1], h)
    return bad_x | bad_y, bad_x, bad_y


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_kernel_follows_the_documented_rules(dtype):
    """The rules checked directly (independent of the reference, so on any CPU)."""
    args, grad = special_args(3, 4, 0.7, dtype)
    out, (grad_value, grad_locations, grad_weights) = operator_and_grads(args, grad)
    bad, bad_x, bad_y = _non_finite_coordinates(args[3], args[1])
    rows = bad[..., 0, 0]  # (1, Q, M)
    out = out.view(1, -1, 2, 3)
    assert torch.equal(out.isnan().all(-1), rows) and torch.equal(out.isnan().any(-1), rows)
    assert torch.equal(grad_weights.isnan(), bad)
    gx, gy = grad_locations[..., 0], grad_locations[..., 1]
    assert torch.equal(gx.isnan(), bad_y) and torch.equal(gy.isnan(), bad_x)
    assert bool((gx[bad_x & ~bad_y] == 0).all()) and bool((gy[bad_y & ~bad_x] == 0).all())
    assert bool(grad_value.isfinite().all())
    # grad_value equals what the finite locations alone give
    finite_only = [t.clone() for t in args]
    finite_only[4] = torch.where(bad, torch.zeros_like(args[4]), args[4])
    finite_only[3] = torch.where(bad[..., None], torch.full_like(args[3], 5.0), args[3])  # far off the map
    _, (grad_value_finite, _, _) = operator_and_grads(finite_only, grad)
    torch.testing.assert_close(grad_value, grad_value_finite)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the reference's gradients at non-finite locations depend on how the CPU converts NaN to "
                           "an integer (x86: every corner off the map)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_follows_the_documented_rules(dtype):
    """The rules are the reference's (F.grid_sample's) on x86, where they were measured."""
    args, grad = special_args(3, 4, 0.7, dtype)
    out, (grad_value, grad_locations, grad_weights) = reference_and_grads(args, grad)
    bad, bad_x, bad_y = _non_finite_coordinates(args[3], args[1])
    assert torch.equal(out.view(1, -1, 2, 3).isnan().all(-1), bad[..., 0, 0])
    assert torch.equal(grad_weights.isnan(), bad)
    assert torch.equal(grad_locations[..., 0].isnan(), bad_y) and torch.equal(grad_locations[..., 1].isnan(), bad_x)
    assert bool(grad_value.isfinite().all())


@needs_cpu_kernel
def test_nan_location_makes_only_its_row_nan_through_every_path(monkeypatch):
    """A NaN location poisons its own (query, head) row only: eagerly, forced onto the reference,
    and compiled."""
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
    shapes, starts = level_inputs([(3, 4), (2, 2)])
    g = torch.Generator().manual_seed(3)
    value = torch.randn(1, 16, 2, 4, generator=g)
    locations = torch.rand(1, 3, 2, 2, 2, 2, generator=g)
    locations[0, 1, 0, 1, 0, 1] = NAN  # query 1, head 0, level 1, point 0, y
    weights = torch.rand(1, 3, 2, 2, 2, generator=g)
    expected_nan = torch.zeros(1, 3, 8, dtype=torch.bool)
    expected_nan[0, 1, :4] = True
    args = (value, shapes, starts, locations, weights)
    outputs = [ms_deform_attn(*args), torch.compile(ms_deform_attn, backend="eager")(*args)]
    monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    outputs.append(ms_deform_attn(*args))
    for out in outputs:
        assert torch.equal(out.isnan(), expected_nan)
    torch.testing.assert_close(outputs[0], outputs[2], equal_nan=True)
