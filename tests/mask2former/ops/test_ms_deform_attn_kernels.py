"""The compiled multi-scale deformable attention kernels (C++ CPU, CUDA) against the PyTorch
reference: values and gradients in every dtype they take, odd shapes, the registered operator
under torch.compile and torch.export, and the choice of implementation (dispatch, its log line,
MSDA_FORCE_PYTORCH). CUDA cases are skipped without a GPU; CPU-kernel cases are skipped when the
extension is not built, which test_cpu_kernel_is_built reports as a failure where a compiler exists."""
import logging
import os
import shutil
import subprocess
import sys

import pytest
import torch

from mask2former.ops import (
    MSDeformAttn,
    dispatch,
    ms_deform_attn,
    ms_deform_attn_pytorch,
    select_implementation,
)
from mask2former.ops.example_inputs import encoder_inputs
from tests.mask2former.ops.test_ms_deform_attn import make_inputs

CPU_KERNEL = dispatch.kernel_status("cpu")[0]
CUDA_KERNEL = torch.cuda.is_available() and dispatch.kernel_status("cuda")[0]
needs_cpu_kernel = pytest.mark.skipif(not CPU_KERNEL, reason=f"CPU kernel not built: {dispatch.kernel_status('cpu')[1]}")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")

# (batch, level shapes (H, W), queries): one level, non-square levels, transposed levels, no query
ODD_SHAPES = [
    (1, [(4, 4)], 5),
    (3, [(5, 7), (3, 2), (1, 4)], 4),
    (1, [(2, 6), (6, 2)], 3),
    (3, [(3, 5), (2, 2)], 0),
    (2, [(1, 1)], 3),
]


@pytest.fixture(autouse=True)
def default_dispatch(monkeypatch):
    """Every test starts from the default choice of implementation: a caller's MSDA_FORCE_PYTORCH=1
    does not leak in (the tests that force the reference set it themselves)."""
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)


def kernel_forward(*args):
    return torch.ops.mask2former_kernels.ms_deform_attn_forward(*args)


def kernel_backward(grad, *args):
    return torch.ops.mask2former_kernels.ms_deform_attn_backward(grad, *args)


def reference_with_grads(value, shapes, starts, locations, weights, grad):
    """The reference's output and its autograd gradients (value, locations, weights), in float64."""
    leaves = [t.detach().double().requires_grad_(True) for t in (value, locations, weights)]
    out = ms_deform_attn_pytorch(leaves[0], shapes, starts, leaves[1], leaves[2])
    out.backward(grad.double())
    return out.detach(), [t.grad for t in leaves]


def mask2former_inputs(batch=2, image=128, dtype=torch.float32, seed=0, device="cpu"):
    """Mask2Former R50 encoder shapes (strides 8, 16, 32, 8 heads, 4 points, D = 32, Lq = S), each
    query sampling around its own pixel, some points outside (see encoder_inputs)."""
    return encoder_inputs(batch, image, dtype=dtype, device=device, seed=seed)


def assert_relative(actual, expected, rel, what=""):
    """max |actual - expected| <= rel * max |expected| (in float64)."""
    actual, expected = actual.double().cpu(), expected.double().cpu()
    assert actual.shape == expected.shape, what
    scale = expected.abs().max().item() if expected.numel() else 0.0
    err = (actual - expected).abs().max().item() if expected.numel() else 0.0
    assert err <= rel * max(scale, 1e-30), f"{what}: max error {err:.3g} > {rel:g} x {scale:.3g}"


def test_cpu_kernel_is_built():
    """The README's install builds the CPU kernel wherever a C++ compiler exists."""
    compiler = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if os.environ.get("MSDA_DISABLE_EXTENSION") == "1" or compiler is None:
        pytest.skip("no C++ compiler, or the kernels are disabled (MSDA_DISABLE_EXTENSION=1)")
    assert CPU_KERNEL, f"the CPU kernel is not available although {compiler} exists: {dispatch.kernel_status('cpu')[1]}"


# ---------------------------------------------------------------------------------------------
# the CPU kernel against the reference
# ---------------------------------------------------------------------------------------------

@needs_cpu_kernel
@pytest.mark.parametrize("batch,shapes,queries", ODD_SHAPES)
@pytest.mark.parametrize("dim", [3, 16, 32])
def test_cpu_kernel_float64_matches_reference(batch, shapes, queries, dim):
    args = make_inputs(batch, shapes, queries, heads=2, dim=dim, points=3, seed=queries + dim)  # points in/outside
    grad = torch.randn(batch, queries, 2 * dim, dtype=torch.float64)
    expected, expected_grads = reference_with_grads(*args, grad)
    torch.testing.assert_close(kernel_forward(*args), expected, rtol=1e-12, atol=1e-12)
    for got, want, name in zip(kernel_backward(grad, *args), expected_grads, ("value", "locations", "weights")):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=name)


@needs_cpu_kernel
def test_cpu_kernel_on_pixel_edges_and_outside():
    """Locations on pixel centres, on the lines between pixels, on the map's outer edges, just
    inside and outside them, and far away: values and gradients as the reference."""
    h, w = 3, 4
    xs = torch.tensor([-1.5, -1.0, -0.5, -0.25, 0.0, 0.5, 1.0, 2.0, 3.0, 3.5, 3.75, 4.0, 4.5, 6.0])  # pixels
    x, y = torch.meshgrid(xs, xs, indexing="ij")
    px = torch.stack(((x.flatten() + 0.5) / w, (y.flatten() + 0.5) / h), -1).double()  # normalized
    value = torch.randn(1, h * w, 1, 5, dtype=torch.float64)
    locations = px.view(1, -1, 1, 1, 1, 2)
    weights = torch.rand(1, px.shape[0], 1, 1, 1, dtype=torch.float64) + 0.5
    args = (value, torch.tensor([[h, w]]), torch.tensor([0]), locations, weights)
    grad = torch.randn(1, px.shape[0], 5, dtype=torch.float64)
    expected, expected_grads = reference_with_grads(*args, grad)
    torch.testing.assert_close(kernel_forward(*args), expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(kernel_backward(grad, *args), expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@needs_cpu_kernel
def test_gradcheck_through_the_operator():
    value, shapes, starts, locations, weights = make_inputs(2, [(3, 4), (2, 3)], 3, heads=2, dim=3, points=2, seed=4,
                                                          low=-0.1, high=1.1)
    assert select_implementation(value.device, value.dtype).kind == "cpu_kernel"
    for t in (value, locations, weights):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, loc, a: torch.ops.mask2former.ms_deform_attn(v, shapes, starts, loc, a),
                                    (value, locations, weights), eps=1e-6, atol=1e-6)


@needs_cpu_kernel
@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_kernel_float32_on_mask2former_shapes(batch):
    args = mask2former_inputs(batch=batch, image=128, seed=batch)
    grad = torch.randn(batch, args[3].shape[1], 256)
    expected, expected_grads = reference_with_grads(*args, grad)
    out = kernel_forward(*args)
    assert out.dtype == torch.float32
    assert_relative(out, expected, 1e-5, "output")
    for got, want, name in zip(kernel_backward(grad, *args), expected_grads, ("value", "locations", "weights")):
        assert got.dtype == torch.float32
        assert_relative(got, want, 1e-5, name)


@needs_cpu_kernel
@pytest.mark.parametrize("dtype,rel", [(torch.bfloat16, 2e-2), (torch.float16, 2e-3)])
def test_cpu_half_precision_through_the_operator(dtype, rel):
    """bfloat16 runs the kernel's bfloat16 variant (float32 sums), float16 the float32 kernel; both
    against the reference in float64 on the same (rounded) inputs, within their precision."""
    value, shapes, starts, locations, weights = mask2former_inputs(batch=2, image=64, dtype=dtype, seed=7)
    impl = select_implementation(value.device, dtype)
    assert impl.kind == "cpu_kernel" and impl.compute_dtype == (torch.float32 if dtype == torch.float16 else None)
    leaves = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    out = torch.ops.mask2former.ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2])
    grad = torch.randn(out.shape).to(dtype)
    out.backward(grad)
    expected, expected_grads = reference_with_grads(value, shapes, starts, locations, weights, grad)
    assert out.dtype == dtype
    assert_relative(out.detach(), expected, rel, "output")
    for leaf, want, name in zip(leaves, expected_grads, ("value", "locations", "weights")):
        assert leaf.grad.dtype == dtype
        assert_relative(leaf.grad, want, rel, name)


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_backward_with_few_heads_splits_queries(dtype):
    """One (batch, head) pair and more threads than pairs: the backward splits the queries among
    tasks with private grad_value buffers and sums them; the result is the reference's."""
    args = make_inputs(1, [(6, 5), (3, 3)], 300, heads=1, dim=8, points=4, seed=9, dtype=torch.float64)
    grad = torch.randn(1, 300, 8, dtype=torch.float64).to(dtype)
    cast = [t.to(dtype) if t.is_floating_point() else t for t in args]
    _, expected_grads = reference_with_grads(*cast, grad)  # from the rounded inputs
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        grads = kernel_backward(grad, *cast)
    finally:
        torch.set_num_threads(threads)
    rel = 1e-5 if dtype == torch.float32 else 2e-2
    for got, want, name in zip(grads, expected_grads, ("value", "locations", "weights")):
        assert_relative(got, want, rel, name)


@needs_cpu_kernel
def test_cpu_baseline_isa_matches_the_reference():
    """The kernels compiled for the baseline ISA (ATEN_CPU_CAPABILITY=default; AVX2 + FMA otherwise
    where the processor has them) give the same results, in a subprocess."""
    script = (
        "import torch, mask2former.ops\n"
        "from tests.mask2former.ops.test_ms_deform_attn_kernels import mask2former_inputs, reference_with_grads, "
        "assert_relative, kernel_forward, kernel_backward\n"
        "args = mask2former_inputs(batch=1, image=64, seed=3)\n"
        "grad = torch.randn(1, args[3].shape[1], 256)\n"
        "expected, grads = reference_with_grads(*args, grad)\n"
        "assert_relative(kernel_forward(*args), expected, 1e-5)\n"
        "for got, want in zip(kernel_backward(grad, *args), grads): assert_relative(got, want, 1e-5)\n"
        "print('ok')\n")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@needs_cpu_kernel
def test_cpu_kernel_rejects_levels_outside_value():
    value, shapes, starts, locations, weights = make_inputs(1, [(3, 4), (2, 2)], 2)
    with pytest.raises(ValueError, match="value has S = 16 positions but spatial_shapes give sum"):
        kernel_forward(value, torch.tensor([[3, 4], [3, 3]]), starts, locations, weights)
    with pytest.raises(TypeError, match="one dtype"):
        kernel_forward(value, shapes, starts, locations.float(), weights)


@needs_cpu_kernel
def test_operator_takes_non_contiguous_inputs():
    value, shapes, starts, locations, weights = make_inputs(2, [(4, 3), (2, 2)], 5, heads=2, dim=4, seed=1)
    value_t = value.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    weights_t = weights.transpose(0, 1).contiguous().transpose(0, 1)
    assert not value_t.is_contiguous() and not weights_t.is_contiguous()
    torch.testing.assert_close(ms_deform_attn(value_t, shapes, starts, locations, weights_t),
                               ms_deform_attn_pytorch(value, shapes, starts, locations, weights), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# torch.compile and torch.export
# ---------------------------------------------------------------------------------------------

def _tiny_module():
    torch.manual_seed(0)
    module = MSDeformAttn(d_model=16, n_levels=2, n_heads=2, n_points=2)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    shapes, starts = torch.tensor([[4, 3], [2, 2]]), torch.tensor([0, 12])
    inputs = (torch.randn(2, 5, 16), torch.rand(2, 5, 2, 2), torch.randn(2, 16, 16), shapes, starts)
    return module, inputs


def test_compile_fullgraph_keeps_the_operator_forward_and_backward():
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    module, inputs = _tiny_module()
    graphs = {"forward": [], "backward": []}

    def capture(kind):
        def compiler(gm, example_inputs):
            graphs[kind].append(str(gm.graph))
            return make_boxed_func(gm.forward)
        return compiler

    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True,
                             backend=aot_autograd(fw_compiler=capture("forward"), bw_compiler=capture("backward")))
    out = compiled(*inputs)
    out.square().sum().backward()
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    module.zero_grad()
    eager = module(*inputs)
    eager.square().sum().backward()
    torch.testing.assert_close(out, eager, rtol=1e-6, atol=1e-6)
    for name, p in module.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-6, msg=name)
    assert any("mask2former.ms_deform_attn.default" in g for g in graphs["forward"]), graphs["forward"]
    assert any("mask2former.ms_deform_attn_backward.default" in g for g in graphs["backward"]), graphs["backward"]


def test_dynamo_sees_no_graph_break():
    module, inputs = _tiny_module()
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(module)(*inputs)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_export_captures_the_operator():
    module, inputs = _tiny_module()
    module.eval()
    exported = torch.export.export(module, inputs)
    assert "torch.ops.mask2former.ms_deform_attn.default" in exported.graph_module.code
    assert torch.equal(exported.module()(*inputs), module(*inputs))


@pytest.mark.skipif(not hasattr(torch.library, "opcheck"), reason="torch.library.opcheck needs torch >= 2.4")
def test_operators_pass_opcheck():
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch of both operators."""
    value, shapes, starts, locations, weights = make_inputs(2, [(3, 4), (2, 2)], 3, heads=2, dim=4, points=2,
                                                          dtype=torch.float32, seed=5)
    grad = torch.randn(2, 3, 8)
    torch.library.opcheck(torch.ops.mask2former.ms_deform_attn.default,
                          (value.requires_grad_(), shapes, starts, locations.requires_grad_(), weights.requires_grad_()))
    torch.library.opcheck(torch.ops.mask2former.ms_deform_attn_backward.default,
                          (grad, value.detach(), shapes, starts, locations.detach(), weights.detach()))


# ---------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def fresh_log(monkeypatch, caplog):
    """Forget which choices were logged, and capture the dispatch logger at INFO."""
    monkeypatch.setattr(dispatch, "_logged", set())
    caplog.set_level(logging.INFO, logger="mask2former.ops.dispatch")
    return caplog


def _dispatch_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "mask2former.ops.dispatch"]


def test_forced_reference_is_the_reference_and_says_so(monkeypatch, fresh_log):
    monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    value, shapes, starts, locations, weights = make_inputs(2, [(5, 4), (2, 3)], 6, dtype=torch.float32, seed=2)
    leaves = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    out = ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2])
    grad = torch.randn_like(out)
    out.backward(grad)
    ref_leaves = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    expected = ms_deform_attn_pytorch(ref_leaves[0], shapes, starts, ref_leaves[1], ref_leaves[2])
    expected.backward(grad)
    assert torch.equal(out, expected)
    for leaf, ref in zip(leaves, ref_leaves):
        assert torch.equal(leaf.grad, ref.grad)
    lines = _dispatch_lines(fresh_log)
    assert lines == ["multi-scale deformable attention on cpu float32: the PyTorch reference (MSDA_FORCE_PYTORCH=1)"]


@needs_cpu_kernel
def test_kernel_choice_is_logged_once_per_device_and_dtype(monkeypatch, fresh_log):
    args32 = make_inputs(1, [(3, 3)], 2, dtype=torch.float32)
    args64 = make_inputs(1, [(3, 3)], 2, dtype=torch.float64)
    for _ in range(3):
        ms_deform_attn(*args32)
    ms_deform_attn(*args64)
    assert _dispatch_lines(fresh_log) == [
        "multi-scale deformable attention on cpu float32: the C++ CPU kernel (mask2former._C)",
        "multi-scale deformable attention on cpu float64: the C++ CPU kernel (mask2former._C)"]
    # the kernel really runs: its result differs from the reference's by rounding only
    out = ms_deform_attn(*args32)
    torch.testing.assert_close(out, ms_deform_attn_pytorch(*args32), rtol=1e-5, atol=1e-6)


def test_unavailable_kernel_falls_back_to_the_reference(monkeypatch, fresh_log):
    monkeypatch.setitem(dispatch._status, "cpu", (False, "mask2former._C does not load: ImportError: simulated"))
    args = make_inputs(2, [(4, 3)], 3, dtype=torch.float32, seed=6)
    assert torch.equal(ms_deform_attn(*args), ms_deform_attn_pytorch(*args))
    assert _dispatch_lines(fresh_log) == [
        "multi-scale deformable attention on cpu float32: the PyTorch reference (the C++ CPU kernel is unavailable: "
        "mask2former._C does not load: ImportError: simulated)"]


@pytest.mark.parametrize("device,dtype,kind,compute", [
    ("cpu", torch.float32, "cpu_kernel", None),
    ("cpu", torch.float64, "cpu_kernel", None),
    ("cpu", torch.bfloat16, "cpu_kernel", None),
    ("cpu", torch.float16, "cpu_kernel", torch.float32),
    ("meta", torch.float32, "pytorch", None),
])
def test_dispatch_rules(monkeypatch, device, dtype, kind, compute):
    monkeypatch.setitem(dispatch._status, "cpu", (True, "mask2former._C"))  # the rules, built or not
    impl = select_implementation(torch.device(device), dtype)
    assert (impl.kind, impl.compute_dtype) == (kind, compute)
    monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    assert select_implementation(torch.device(device), dtype).kind == "pytorch"


def test_module_impl_pytorch_is_the_reference(monkeypatch):
    """impl="pytorch" calls the reference directly: the operator (and its dispatch) never runs."""
    import mask2former.ops.op as op_module

    module, inputs = _tiny_module()

    def fail(*args):
        raise AssertionError("the operator ran")

    monkeypatch.setattr(op_module, "select_implementation", fail)
    reference = MSDeformAttn(d_model=16, n_levels=2, n_heads=2, n_points=2, impl="pytorch")
    reference.load_state_dict(module.state_dict())
    query, ref_points, x, shapes, starts = inputs
    value = module.value_proj(x).view(2, 16, 2, 8)
    expected = module.output_proj(ms_deform_attn_pytorch(value, shapes, starts, module.sampling_locations(
        query, ref_points, shapes), module.attention_probabilities(query)))
    assert torch.equal(reference(*inputs), expected)
    with pytest.raises(AssertionError, match="the operator ran"):
        module(*inputs)
    with pytest.raises(ValueError, match=r"impl must be one of \('auto', 'pytorch'\)"):
        MSDeformAttn(d_model=16, impl="cuda")
    with pytest.raises(ValueError, match="impl must be one of"):
        ms_deform_attn(*make_inputs(1, [(2, 2)], 1), impl="kernel")


@needs_cpu_kernel
def test_pixel_decoder_encoder_runs_the_kernel(monkeypatch):
    """Mask2Former's deformable encoder goes through the operator: the kernel runs, and its output
    equals the forced reference's within float32 rounding."""
    import mask2former.ops.op as op_module
    from mask2former.modeling.pixel_decoder import MSDeformAttnTransformerEncoderOnly

    torch.manual_seed(0)
    encoder = MSDeformAttnTransformerEncoderOnly(d_model=32, nhead=4, num_encoder_layers=2, dim_feedforward=64,
                                                 dropout=0.0, num_feature_levels=2, enc_n_points=2).eval()
    srcs = [torch.randn(1, 32, 8, 6), torch.randn(1, 32, 4, 3)]
    pos = [torch.randn_like(s) for s in srcs]
    kinds = []

    def recording(*args):
        impl = select_implementation(*args)
        kinds.append(impl.kind)
        return impl

    monkeypatch.setattr(op_module, "select_implementation", recording)
    with torch.no_grad():
        memory = encoder(srcs, pos)
        monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
        forced = encoder(srcs, pos)
    assert kinds == ["cpu_kernel", "cpu_kernel", "pytorch", "pytorch"]
    assert_relative(memory, forced, 1e-5, "encoder memory")


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------

@needs_cuda
def test_cuda_kernel_is_available():
    assert CUDA_KERNEL, dispatch.kernel_status("cuda")[1]
    assert select_implementation(torch.device("cuda"), torch.float16).kind == "cuda_kernel"


@needs_cuda
@pytest.mark.parametrize("batch,shapes,queries", ODD_SHAPES)
@pytest.mark.parametrize("dim", [3, 32, 48])
def test_cuda_kernel_float64_matches_reference(batch, shapes, queries, dim):
    args = make_inputs(batch, shapes, queries, heads=2, dim=dim, points=3, seed=queries + dim)
    grad = torch.randn(batch, queries, 2 * dim, dtype=torch.float64)
    expected, expected_grads = reference_with_grads(*args, grad)
    cuda_args = [t.cuda() for t in args]
    torch.testing.assert_close(kernel_forward(*cuda_args).cpu(), expected, rtol=1e-12, atol=1e-12)
    for got, want, name in zip(kernel_backward(grad.cuda(), *cuda_args), expected_grads, ("value", "loc", "w")):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-10, atol=1e-10, msg=name)


@needs_cuda
@pytest.mark.parametrize("dtype,rel", [(torch.float32, 1e-5), (torch.float16, 4e-3), (torch.bfloat16, 2e-2)])
def test_cuda_kernel_on_mask2former_shapes(dtype, rel):
    value, shapes, starts, locations, weights = mask2former_inputs(batch=2, image=128, dtype=dtype, seed=1,
                                                                   device="cuda")
    leaves = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    out = ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2])
    grad = torch.randn(out.shape, device="cuda").to(dtype)
    out.backward(grad)
    expected, expected_grads = reference_with_grads(value.cpu(), shapes.cpu(), starts.cpu(), locations.cpu(),
                                                    weights.cpu(), grad.cpu())
    assert out.dtype == dtype
    assert_relative(out.detach(), expected, rel, "output")
    for leaf, want, name in zip(leaves, expected_grads, ("value", "locations", "weights")):
        assert leaf.grad.dtype == dtype
        assert_relative(leaf.grad, want, rel, name)


@needs_cuda
def test_cuda_gradcheck_and_compile():
    value, shapes, starts, locations, weights = [t.cuda() for t in make_inputs(
        2, [(3, 4), (2, 3)], 3, heads=2, dim=3, points=2, seed=4, low=-0.1, high=1.1)]
    for t in (value, locations, weights):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, loc, a: ms_deform_attn(v, shapes, starts, loc, a),
                                    (value, locations, weights), eps=1e-6, atol=1e-6)
    module, inputs = _tiny_module()
    module, inputs = module.cuda(), [t.cuda() for t in inputs]
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True)
    torch.testing.assert_close(compiled(*inputs), module(*inputs), rtol=1e-5, atol=1e-5)
