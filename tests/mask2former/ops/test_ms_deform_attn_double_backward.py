"""Double backward of multi-scale deformable attention: correct through the operator (with
create_graph=True the backward is computed with the reference's differentiable written-out backward,
since the kernels' is not differentiable), and a clear error when the backward operator itself is
differentiated. It used to return zeros silently."""
import pytest
import torch

import mask2former.ops.op as op_module
from mask2former.ops import ms_deform_attn, ms_deform_attn_pytorch, select_implementation
from tests.mask2former.ops.msda_helpers import CPU_KERNEL, level_inputs, needs_cpu_kernel, needs_cuda


def small_inputs(dtype=torch.float64, seed=11, device="cpu"):
    """Two levels, 2 heads, 2 points; locations in [-0.1, 1.1] (some off the map), none within
    finite-difference reach of a pixel-coordinate tie (random, fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    shapes, starts = level_inputs([(3, 4), (2, 3)])
    value = torch.randn(2, 18, 2, 3, generator=g, dtype=torch.float64)
    locations = -0.1 + 1.2 * torch.rand(2, 3, 2, 2, 2, 2, generator=g, dtype=torch.float64)
    weights = torch.rand(2, 3, 2, 2, 2, generator=g, dtype=torch.float64)
    floats = [t.to(device=device, dtype=dtype).requires_grad_(True) for t in (value, locations, weights)]
    return floats[0], shapes.to(device), starts.to(device), floats[1], floats[2]


def _operator(shapes, starts):
    return lambda v, loc, a: torch.ops.mask2former.ms_deform_attn(v, shapes, starts, loc, a)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
@pytest.mark.parametrize("force_reference", [False, True], ids=["kernel", "reference"])
def test_gradgradcheck_through_the_operator(monkeypatch, force_reference, device):
    if force_reference:
        monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    else:
        monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
        if device == "cpu" and not CPU_KERNEL:
            pytest.skip("CPU kernel not built")
    value, shapes, starts, locations, weights = small_inputs(device=device)
    assert torch.autograd.gradgradcheck(_operator(shapes, starts), (value, locations, weights), eps=1e-6, atol=1e-5)


@needs_cpu_kernel
def test_second_derivative_of_the_issue_equals_the_reference(monkeypatch):
    """grad(grad(out^2, loc, create_graph)^2, weights): the kernel path returned zeros."""
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
    value, shapes, starts, locations, weights = small_inputs(seed=5)
    assert select_implementation(value.device, value.dtype).kind == "cpu_kernel"

    def second_derivative(fn):
        out = fn(value, shapes, starts, locations, weights)
        grad_locations = torch.autograd.grad(out.square().sum(), locations, create_graph=True)[0]
        return torch.autograd.grad(grad_locations.square().sum(), weights)[0]

    got = second_derivative(ms_deform_attn)
    expected = second_derivative(ms_deform_attn_pytorch)
    assert expected.abs().max() > 1
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@needs_cpu_kernel
def test_kernel_backward_runs_unless_the_graph_is_differentiated(monkeypatch):
    """Plain backward runs the backward operator (the kernel); create_graph=True the reference's
    written-out backward, and only then."""
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
    calls = []
    reference_backward = op_module.ms_deform_attn_pytorch_backward

    def recording(*args):
        calls.append("reference backward")
        return reference_backward(*args)

    monkeypatch.setattr(op_module, "ms_deform_attn_pytorch_backward", recording)
    value, shapes, starts, locations, weights = small_inputs()
    out = torch.ops.mask2former.ms_deform_attn(value, shapes, starts, locations, weights)
    first = torch.autograd.grad(out.sum(), (value, locations, weights), retain_graph=True)
    assert calls == []
    again = torch.autograd.grad(out.sum(), (value, locations, weights), create_graph=True)
    assert calls == ["reference backward"]
    assert all(g.requires_grad for g in again)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_double_backward_in_low_precision(dtype):
    """float16 on the CPU runs the kernel in float32: its double backward does too, cast back."""
    value, shapes, starts, locations, weights = small_inputs(dtype=dtype, seed=3)
    out = ms_deform_attn(value, shapes, starts, locations, weights)
    grad_value = torch.autograd.grad(out.square().sum(), value, create_graph=True)[0]
    assert grad_value.dtype == dtype
    got = torch.autograd.grad(grad_value.sum(), locations)[0]
    leaves = [t.detach().double().requires_grad_(True) for t in (value, locations, weights)]
    ref_out = ms_deform_attn_pytorch(leaves[0], shapes, starts, leaves[1], leaves[2])
    ref_grad_value = torch.autograd.grad(ref_out.square().sum(), leaves[0], create_graph=True)[0]
    expected = torch.autograd.grad(ref_grad_value.sum(), leaves[1])[0]
    scale = expected.abs().max().item()
    tol = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 1e-1}[dtype]
    assert (got.double() - expected).abs().max().item() <= tol * scale


def test_differentiating_the_backward_operator_raises():
    value, shapes, starts, locations, weights = small_inputs()
    grad = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    grads = torch.ops.mask2former.ms_deform_attn_backward(grad, value, shapes, starts, locations, weights)
    with pytest.raises(RuntimeError, match="ms_deform_attn_backward is not differentiable.*create_graph=True"):
        torch.autograd.grad(grads[1].sum(), weights)
