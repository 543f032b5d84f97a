"""Bad spatial_shapes / level_start_index and bad sizes: every way of calling multi-scale deformable
attention (the checked function, the operator, the operator forced onto the reference, the raw
kernels, the backward operator, torch.compile, torch.export) raises a ValueError / TypeError that
names the problem, and never reads outside value (the overflow of H * W in int64 that crashed the
kernel under torch.compile is among the cases; it also runs in a subprocess, where a crash would show
as a signal)."""
import os
import subprocess
import sys

import pytest
import torch

from mask2former.ops import ms_deform_attn
from tests.mask2former.ops.msda_helpers import CPU_KERNEL, level_inputs, needs_cpu_kernel, needs_cuda
from tests.paths import REPO_ROOT

POSITIVE = r"spatial_shapes must be positive \(H, W\) pairs"
STARTS = r"level_start_index .*is inconsistent with spatial_shapes"


def _s_mismatch(s):
    return rf"value has S = {s} positions but spatial_shapes"


# (value's S, spatial_shapes, level_start_index, the complaint)
BAD_LEVELS = {
    "overflow 2^32 x 2^32 (the issue)": (4, [[2 ** 32, 2 ** 32]], [0], _s_mismatch(4)),
    "overflow to a small product": (4, [[2 ** 62, 4]], [0], _s_mismatch(4)),
    "overflow to 2^64 = 0": (4, [[2 ** 31, 2 ** 33]], [0], _s_mismatch(4)),
    "int64 max": (4, [[2 ** 63 - 1, 2 ** 63 - 1]], [0], _s_mismatch(4)),
    "int64 min": (4, [[-2 ** 63, -1]], [0], POSITIVE),
    "negative H and W with H * W = S": (4, [[-2, -2]], [0], POSITIVE),
    "empty level": (8, [[2, 4], [0, 3]], [0, 8], POSITIVE),
    "starts [0, 0] (the issue)": (8, [[2, 2], [2, 2]], [0, 0], STARTS),
    "starts off by one": (8, [[2, 2], [2, 2]], [0, 5], STARTS),
    "negative start": (8, [[2, 2], [2, 2]], [-4, 0], STARTS),
    "first level not at 0": (8, [[2, 2], [1, 2]], [2, 4], STARTS),
    "huge start": (8, [[2, 2], [2, 2]], [0, 2 ** 62], STARTS),
    "second level overflows": (8, [[2, 2], [2 ** 40, 2 ** 40]], [0, 4], _s_mismatch(8)),
    "levels overrun S": (8, [[2, 2], [3, 2]], [0, 4], _s_mismatch(8)),
    "levels short of S": (8, [[2, 2], [1, 2]], [0, 4], _s_mismatch(8)),
}


def bad_args(s, shapes, starts, dtype=torch.float32, device="cpu"):
    levels = len(shapes)
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, s, 2, 3, generator=g, dtype=dtype).to(device), torch.tensor(shapes, device=device),
            torch.tensor(starts, device=device), torch.rand(1, 3, 2, levels, 2, 2, generator=g, dtype=dtype).to(device),
            torch.rand(1, 3, 2, levels, 2, generator=g, dtype=dtype).to(device)]


def _operator(*args):
    return torch.ops.mask2former.ms_deform_attn(*args)


def _kernel(*args):
    return torch.ops.mask2former_kernels.ms_deform_attn_forward(*args)


def _kernel_backward(*args):
    return torch.ops.mask2former_kernels.ms_deform_attn_backward(torch.ones(1, 3, 6, dtype=args[0].dtype), *args)


def _backward_operator(*args):
    return torch.ops.mask2former.ms_deform_attn_backward(torch.ones(1, 3, 6, dtype=args[0].dtype), *args)


def _compiled_wrapper(*args):
    return torch.compile(ms_deform_attn, backend="eager")(*args)


def _compiled_operator_with_backward(*args):
    leaves = [t.requires_grad_(True) if t.is_floating_point() else t for t in args]
    return torch.compile(lambda *a: _operator(*a).sum(), backend="aot_eager", fullgraph=True)(*leaves).backward()


CALLS = {
    "ms_deform_attn": ms_deform_attn,
    "ms_deform_attn(impl=pytorch)": lambda *a: ms_deform_attn(*a, impl="pytorch"),
    "operator": _operator,
    "operator on the reference": "force_reference",
    "backward operator": _backward_operator,
    "backward operator on the reference": "force_reference_backward",
    "compiled ms_deform_attn (eager backend)": _compiled_wrapper,
    "compiled operator + backward (aot_eager)": _compiled_operator_with_backward,
    "CPU kernel": _kernel,
    "CPU kernel backward": _kernel_backward,
}


@pytest.fixture
def call(request, monkeypatch):
    name = request.param
    if "kernel" in name and not CPU_KERNEL:
        pytest.skip("CPU kernel not built")
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
    fn = CALLS[name]
    if fn in ("force_reference", "force_reference_backward"):
        monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
        fn = _operator if fn == "force_reference" else _backward_operator
    if "compiled" in name:
        torch._dynamo.reset()
    return fn


@pytest.mark.parametrize("call", list(CALLS), indirect=True)
@pytest.mark.parametrize("case", list(BAD_LEVELS))
def test_bad_levels_raise_everywhere(call, case):
    s, shapes, starts, match = BAD_LEVELS[case]
    with pytest.raises(ValueError, match=match):
        call(*bad_args(s, shapes, starts))


@pytest.mark.parametrize("call", ["operator", "operator on the reference", "CPU kernel"], indirect=True)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_bad_levels_raise_in_every_dtype(call, dtype):
    if call is _kernel and dtype == torch.float16:
        pytest.skip("the CPU kernel has no float16 variant (the operator runs it in float32)")
    with pytest.raises(ValueError, match=STARTS):
        call(*bad_args(8, [[2, 2], [2, 2]], [0, 0], dtype=dtype))


def test_the_issue_does_not_crash_in_a_subprocess():
    """The reproduction from the issue (it ended with signal 11): a ValueError now, through
    torch.compile and through the operator directly, and the kernel never runs."""
    script = (
        "import torch\n"
        "from mask2former.ops import ms_deform_attn\n"
        "args = (torch.randn(1, 4, 1, 2), torch.tensor([[2**32, 2**32]]), torch.tensor([0]),\n"
        "        torch.full((1, 1, 1, 1, 1, 2), .5), torch.ones(1, 1, 1, 1, 1))\n"
        "for f in (torch.compile(ms_deform_attn, backend='eager'), torch.ops.mask2former.ms_deform_attn):\n"
        "    try:\n"
        "        f(*args)\n"
        "        print('no error')\n"
        "    except ValueError as e:\n"
        "        print('ValueError' if 'positions but spatial_shapes' in str(e) else repr(e))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MSDA_FORCE_PYTORCH", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split() == ["ValueError", "ValueError"], result.stdout + result.stderr[-2000:]


# ------------------------------------------------------------------------------------------------
# types, ranks and sizes through the operator (the reference path and the kernel path alike)
# ------------------------------------------------------------------------------------------------

def _valid():
    shapes, starts = level_inputs([(3, 4), (2, 2)])
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, 16, 2, 3, generator=g), shapes, starts, torch.rand(2, 5, 2, 2, 2, 2, generator=g),
            torch.rand(2, 5, 2, 2, 2, generator=g)]


def _with(index, new):
    args = _valid()
    args[index] = new(args[index])
    return args


@pytest.mark.parametrize("force_reference", [False, True], ids=["kernel", "reference"])
@pytest.mark.parametrize("args,error,match", [
    (_with(1, lambda s: s.float()), TypeError, "spatial_shapes must be an integer tensor"),
    (_with(2, lambda s: s.bool()), TypeError, "level_start_index must be an integer tensor"),
    (_with(0, lambda v: v.long()), TypeError, "value must be a floating-point tensor"),
    (_with(3, lambda loc: loc.double()), TypeError, "must have one dtype"),
    (_with(0, lambda v: v[0]), ValueError, "value must be 4-D"),
    (_with(1, lambda s: s[:0]), ValueError, r"spatial_shapes has no level \(L = 0\)"),
    (_with(2, lambda s: s[:1]), ValueError, r"L \(levels\)"),
    (_with(4, lambda w: w[:, :, :1]), ValueError, r"M \(heads\)"),
    (_with(4, lambda w: w[..., :1]), ValueError, r"Lq \(queries, dim 1\) or P"),
    (_with(3, lambda loc: torch.cat([loc, loc[..., :1]], -1)), ValueError, r"\(x, y\) pair"),
])
def test_operator_checks_kinds_and_sizes(monkeypatch, force_reference, args, error, match):
    """The operator checks what the checked function checks, whichever implementation it runs (the
    kernel path used to cast float shapes to int64 silently)."""
    if force_reference:
        monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    else:
        monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
    with pytest.raises(error, match=match):
        torch.ops.mask2former.ms_deform_attn(*args)


def test_backward_operator_checks_grad_output():
    args = _valid()
    with pytest.raises(ValueError, match=r"grad_output must be \(N, Lq, M \* D\) = \(2, 5, 6\)"):
        torch.ops.mask2former.ms_deform_attn_backward(torch.ones(2, 5, 7), *args)
    with pytest.raises(TypeError, match="grad_output must be a floating-point tensor"):
        torch.ops.mask2former.ms_deform_attn_backward(torch.ones(2, 5, 6, dtype=torch.long), *args)


@needs_cpu_kernel
def test_kernel_checks_sizes_and_dtypes_itself():
    """The raw kernels (no Python checks in front) reject what would index wrongly."""
    value, shapes, starts, locations, weights = _valid()
    with pytest.raises(ValueError, match="does not match"):
        torch.ops.mask2former_kernels.ms_deform_attn_forward(value, shapes, starts, locations[:, :, :1], weights)
    with pytest.raises(ValueError, match="spatial_shapes has no level"):
        torch.ops.mask2former_kernels.ms_deform_attn_forward(value, shapes[:0], starts[:0], locations[:, :, :, :0],
                                                             weights[:, :, :, :0])
    with pytest.raises(TypeError, match="must be int64"):
        torch.ops.mask2former_kernels.ms_deform_attn_forward(value, shapes.int(), starts, locations, weights)
    with pytest.raises(TypeError, match="one dtype"):
        torch.ops.mask2former_kernels.ms_deform_attn_forward(value, shapes, starts, locations.double(), weights)
    with pytest.raises(ValueError, match="contiguous"):
        torch.ops.mask2former_kernels.ms_deform_attn_forward(value.transpose(2, 3).contiguous().transpose(2, 3), shapes,
                                                             starts, locations, weights)
    with pytest.raises(ValueError, match="grad_output must be a contiguous"):
        torch.ops.mask2former_kernels.ms_deform_attn_backward(torch.ones(2, 5, 5), value, shapes, starts, locations,
                                                              weights)


# ------------------------------------------------------------------------------------------------
# tracing: the fake implementation checks sizes; the values are checked when the graph runs
# ------------------------------------------------------------------------------------------------

def test_compile_rejects_bad_sizes_while_tracing():
    args = _with(4, lambda w: w[..., :1])
    torch._dynamo.reset()
    with pytest.raises(Exception, match=r"Lq \(queries, dim 1\) or P"):
        torch.compile(_operator, backend="aot_eager", fullgraph=True)(*args)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compiled_graph_checks_the_levels_at_every_call(dynamic):
    """One compiled graph, good then bad levels then good again: the bad call raises (the values
    are checked at run time), the good ones agree with eager."""
    torch._dynamo.reset()
    compiled = torch.compile(_operator, backend="aot_eager", fullgraph=True, dynamic=dynamic)
    good = _valid()
    expected = _operator(*good)
    torch.testing.assert_close(compiled(*good), expected)
    bad = list(good)
    bad[2] = torch.tensor([0, 0])
    with pytest.raises(ValueError, match=STARTS):
        compiled(*bad)
    bad[1] = torch.tensor([[2 ** 32, 2 ** 32], [2, 2]])
    with pytest.raises(ValueError, match=_s_mismatch(16)):
        compiled(*bad)
    torch.testing.assert_close(compiled(*good), expected)


def test_exported_program_checks_the_levels():
    class Attention(torch.nn.Module):
        def forward(self, value, shapes, starts, locations, weights):
            return ms_deform_attn(value, shapes, starts, locations, weights)

    good = _valid()
    exported = torch.export.export(Attention(), tuple(good))
    assert "torch.ops.mask2former.ms_deform_attn.default" in exported.graph_module.code
    torch.testing.assert_close(exported.module()(*good), ms_deform_attn(*good))
    bad = list(good)
    bad[1] = torch.tensor([[2 ** 32, 2 ** 32], [2, 2]])
    with pytest.raises(ValueError, match=_s_mismatch(16)):
        exported.module()(*bad)


def test_fake_implementation_checks_sizes_and_known_levels():
    """The fake implementation checks sizes with torch._check_value on fake tensors, and the level
    values where it is given tensors with data."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from mask2former.ops.op import _forward_fake

    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) for t in _valid()]
        assert tuple(_forward_fake(*fake).shape) == (2, 5, 6)
        fake_bad = [mode.from_tensor(t) for t in _with(4, lambda w: w[:, :3])]
        with pytest.raises(ValueError, match=r"Lq \(queries, dim 1\) or P"):
            _forward_fake(*fake_bad)
        # level values are unknown on fake tensors: not an error while tracing
        fake_levels = [mode.from_tensor(t) for t in bad_args(8, [[2, 2], [2, 2]], [0, 0])]
        assert tuple(_forward_fake(*fake_levels).shape) == (1, 3, 6)
    with pytest.raises(ValueError, match=STARTS):
        _forward_fake(*bad_args(8, [[2, 2], [2, 2]], [0, 0]))


# ------------------------------------------------------------------------------------------------
# CUDA (run on a GPU machine)
# ------------------------------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("case", list(BAD_LEVELS))
def test_cuda_bad_levels_raise(monkeypatch, case):
    """The CUDA entry points check the levels on the host (they had no check at all)."""
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)
    s, shapes, starts, match = BAD_LEVELS[case]
    args = bad_args(s, shapes, starts, device="cuda")
    for call in (_operator, torch.ops.mask2former_kernels.ms_deform_attn_forward,
                 lambda *a: torch.ops.mask2former_kernels.ms_deform_attn_backward(
                     torch.ones(1, 3, 6, device="cuda"), *a)):
        with pytest.raises(ValueError, match=match):
            call(*args)
    torch.cuda.synchronize()  # nothing ran out of bounds: the context is still usable
    assert torch.ones(2, device="cuda").sum().item() == 2
