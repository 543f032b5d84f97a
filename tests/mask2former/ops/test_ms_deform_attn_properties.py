"""Property tests (hypothesis) of multi-scale deformable attention: over batch, levels (1 to 3, of
very different sizes, 1 x 1 and 1 x W among them), heads, channels (the kernels' specialized widths
16 and 32 among them), queries (0 included), points and sampling locations (inside the map, exactly
on its border, partly and wholly outside, far away, huge and non-finite), the kernels through the
operator equal the reference, forward and backward, eagerly and compiled; and spatial_shapes /
level_start_index that do not describe value raise a ValueError on every path instead of reading
outside it.

Examples are few by default (the suite stays fast); ``SEGCORE_FUZZ_EXAMPLES=500`` runs more (see
tests/fuzz). The comparisons hold on any CPU: NaN-aware, tolerances relative to the values, and the
location gradient compared away from pixel-coordinate ties (msda_helpers).
"""
import dataclasses
from typing import List, Tuple

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mask2former.ops import ms_deform_attn, ms_deform_attn_pytorch
from tests.fuzz import fuzz_settings
from tests.mask2former.ops.msda_helpers import (
    KERNEL_DEVICES,
    assert_matches,
    level_inputs,
    needs_cpu_kernel,
    needs_cuda,
    operator_and_grads,
    outputs_and_grads,
    reference_and_grads,
)

#: kinds of location coordinates, and how often each coordinate of each sample draws it (among the
#: kinds an example allows): rare far and non-finite ones, so that most rows stay finite
LOCATION_KINDS = ("inside", "border", "outside", "far", "nonfinite")
KIND_FREQUENCY = {"inside": 1.0, "border": 0.2, "outside": 0.5, "far": 0.05, "nonfinite": 0.03}
#: margin kept from pixel-coordinate ties when generating "inside" coordinates (in pixels)
TIE_MARGIN = 0.05
TOLERANCES = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 2e-2}


@dataclasses.dataclass(frozen=True)
class Problem:
    batch: int
    shapes: Tuple[Tuple[int, int], ...]
    heads: int
    channels: int
    queries: int
    points: int
    location_kinds: Tuple[str, ...]
    non_finite_weights: bool
    seed: int

    def inputs(self, dtype=torch.float64) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """The five arguments in ``dtype`` and an output gradient."""
        g = torch.Generator().manual_seed(self.seed)
        spatial_shapes, starts = level_inputs(self.shapes)
        s = int(spatial_shapes.prod(1).sum())
        n, q, m, levels, p = self.batch, self.queries, self.heads, len(self.shapes), self.points
        value = torch.randn(n, s, m, self.channels, generator=g, dtype=torch.float64)
        size = spatial_shapes.flip(-1).to(torch.float64)[None, None, None, :, None, :].expand(n, q, m, levels, p, 2)
        locations = _locations(size, self.location_kinds, g)
        weights = torch.rand(n, q, m, levels, p, generator=g, dtype=torch.float64)
        if self.non_finite_weights and weights.numel():
            pick = torch.rand(weights.shape, generator=g) < 0.03
            weights[pick] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64)[
                torch.randint(0, 3, (int(pick.sum()),), generator=g)]
        grad = torch.randn(n, q, m * self.channels, generator=g, dtype=torch.float64)
        cast = [t.to(dtype) for t in (value, locations, weights, grad)]
        return [cast[0], spatial_shapes, starts, cast[1], cast[2]], cast[3]


def _locations(size: torch.Tensor, kinds, g: torch.Generator) -> torch.Tensor:
    """Normalized coordinates for maps of ``size`` pixels (same shape), each of a kind in ``kinds``."""
    shape = size.shape
    frequency = torch.tensor([KIND_FREQUENCY[k] for k in kinds], dtype=torch.float64)
    pick = torch.multinomial(frequency, max(1, size.numel()), replacement=True, generator=g)[:size.numel()]
    kind = torch.tensor([LOCATION_KINDS.index(k) for k in kinds])[pick].view(shape)
    u = torch.rand(shape, generator=g, dtype=torch.float64)
    side = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    # inside (corners partly off the map near the border): a pixel coordinate in (-1, size), away from ties
    cell = torch.floor(torch.rand(shape, generator=g, dtype=torch.float64) * (size + 1)) - 1
    inside = (cell + TIE_MARGIN + (1 - 2 * TIE_MARGIN) * u + 0.5) / size
    border = (side > 0).to(torch.float64)  # exactly 0 or 1
    # wholly outside: at least TIE_MARGIN pixels beyond the last pixel whose corner reaches the map
    outside_pixel = torch.where(side > 0, size + TIE_MARGIN + 4 * u, -1 - TIE_MARGIN - 4 * u)
    outside = (outside_pixel + 0.5) / size
    far = side * torch.pow(10.0, 1 + 37 * u)  # 10 to 1e38: beyond float32's grid range at the top
    special = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64)
    nonfinite = special[torch.randint(0, 3, shape, generator=g)]
    choices = torch.stack((inside, border, outside, far, nonfinite), 0)
    return choices.gather(0, kind[None]).squeeze(0)


LEVEL_SIZE = st.one_of(st.integers(1, 4), st.integers(9, 30))  # small and large levels mixed


@st.composite
def problems(draw, max_batch=2, location_kinds=st.lists(st.sampled_from(LOCATION_KINDS), min_size=1, unique=True),
             non_finite_weights=st.booleans()):
    return Problem(
        batch=draw(st.integers(1, max_batch)),
        shapes=tuple((draw(LEVEL_SIZE), draw(LEVEL_SIZE)) for _ in range(draw(st.integers(1, 3)))),
        heads=draw(st.integers(1, 3)),
        channels=draw(st.sampled_from([1, 2, 3, 5, 16, 32])),
        queries=draw(st.integers(0, 6)),
        points=draw(st.integers(1, 3)),
        location_kinds=tuple(draw(location_kinds)),
        non_finite_weights=draw(non_finite_weights),
        seed=draw(st.integers(0, 2 ** 31 - 1)),
    )


@pytest.fixture(autouse=True)
def default_dispatch(monkeypatch):
    monkeypatch.delenv("MSDA_FORCE_PYTORCH", raising=False)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@fuzz_settings(25)
@given(problem=problems())
def test_kernel_matches_reference(dtype, device, problem):
    args, grad = problem.inputs(dtype)
    tol = TOLERANCES[dtype]
    assert_matches(operator_and_grads(args, grad, device=device), reference_and_grads(args, grad), args[3], args[1],
                   rtol=tol, atol=tol, what=f"{device} {problem}")


@needs_cpu_kernel
@fuzz_settings(15)
@given(problem=problems())
def test_cpu_kernel_bfloat16_matches_float32_reference(problem):
    """bfloat16 computes in float32: the float32 reference on the same (rounded) inputs, within
    bfloat16's rounding of the results."""
    args, grad = problem.inputs(torch.bfloat16)
    got = operator_and_grads(args, grad)
    assert got[0].dtype == torch.bfloat16
    assert_matches(got, reference_and_grads(args, grad, dtype=torch.float32), args[3], args[1],
                   rtol=TOLERANCES[torch.bfloat16], atol=TOLERANCES[torch.bfloat16], what=str(problem))


def _compiled_loss(backend):
    torch._dynamo.reset()
    return torch.compile(lambda *a: torch.ops.mask2former.ms_deform_attn(*a), backend=backend, fullgraph=True)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@fuzz_settings(8)
@given(problem=problems(max_batch=1))
def test_compiled_operator_matches_reference(backend, problem):
    """torch.compile(fullgraph=True) of the operator, forward and backward (aot_eager traces the
    backward operator into the backward graph): the reference's values and gradients."""
    args, grad = problem.inputs(torch.float64)
    got = outputs_and_grads(_compiled_loss(backend), args, grad)
    assert_matches(got, reference_and_grads(args, grad), args[3], args[1], rtol=1e-10, atol=1e-10, what=str(problem))


@needs_cpu_kernel
def test_default_backend_compiles_the_operator():
    """torch.compile with the default backend (Inductor) on a small case: the operator stays one node
    (an extern call), forward only so that no C++ code is generated."""
    args, _ = Problem(1, ((3, 4), (1, 1)), 2, 4, 3, 2, ("inside", "outside", "nonfinite"), False, 7).inputs(
        torch.float32)
    torch._dynamo.reset()
    with torch.no_grad():
        got = torch.compile(lambda *a: torch.ops.mask2former.ms_deform_attn(*a), fullgraph=True)(*args)
    torch.testing.assert_close(got, ms_deform_attn_pytorch(*args), rtol=1e-5, atol=1e-5, equal_nan=True)
    assert got.isnan().any()


# ------------------------------------------------------------------------------------------------
# bad levels: ValueError on every path, never a read outside value
# ------------------------------------------------------------------------------------------------

INT64_EXTREMES = [0, -1, -2, 2 ** 31, 2 ** 32, 2 ** 62, 2 ** 63 - 1, -2 ** 63]


@st.composite
def level_descriptions(draw):
    """(S, spatial_shapes, level_start_index) as lists: consistent levels with one value possibly
    corrupted (a size or a start replaced by anything in int64, a start shifted, S changed)."""
    shapes = [[draw(st.integers(1, 5)), draw(st.integers(1, 5))] for _ in range(draw(st.integers(1, 3)))]
    sizes = [h * w for h, w in shapes]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    s = sum(sizes)
    corruption = draw(st.sampled_from(["none", "size", "start", "shift", "s"]))
    any_int64 = st.one_of(st.sampled_from(INT64_EXTREMES), st.integers(-2 ** 63, 2 ** 63 - 1), st.integers(-3, 40))
    level = draw(st.integers(0, len(shapes) - 1))
    if corruption == "size":
        shapes[level][draw(st.integers(0, 1))] = draw(any_int64)
    elif corruption == "start":
        starts[level] = draw(any_int64)
    elif corruption == "shift":
        starts[level] += draw(st.integers(-3, 3))
    elif corruption == "s":
        s = max(1, s + draw(st.integers(-3, 3)))
    return s, shapes, starts


def _describes_value(s, shapes, starts):
    """The rule, written independently of the code under test."""
    if any(h < 1 or w < 1 for h, w in shapes):
        return False
    sizes = [h * w for h, w in shapes]
    return starts == [sum(sizes[:i]) for i in range(len(sizes))] and sum(sizes) == s


@needs_cpu_kernel
@fuzz_settings(40)
@given(description=level_descriptions(), seed=st.integers(0, 2 ** 31 - 1))
def test_bad_levels_raise_on_every_path(monkeypatch, description, seed):
    s, shapes, starts = description
    g = torch.Generator().manual_seed(seed)
    levels = len(shapes)
    args = [torch.randn(1, s, 2, 3, generator=g, dtype=torch.float64), torch.tensor(shapes), torch.tensor(starts),
            -0.2 + 1.4 * torch.rand(1, 4, 2, levels, 2, 2, generator=g, dtype=torch.float64),
            torch.rand(1, 4, 2, levels, 2, generator=g, dtype=torch.float64)]
    grad = torch.ones(1, 4, 6, dtype=torch.float64)
    paths = {
        "operator": lambda *a: torch.ops.mask2former.ms_deform_attn(*a),
        "kernel": lambda *a: torch.ops.mask2former_kernels.ms_deform_attn_forward(*a),
        "kernel backward": lambda *a: torch.ops.mask2former_kernels.ms_deform_attn_backward(grad, *a),
        "compiled": torch.compile(ms_deform_attn, backend="eager"),
        "reference": lambda *a: ms_deform_attn(*a, impl="pytorch"),
    }
    if _describes_value(s, shapes, starts):
        expected = ms_deform_attn_pytorch(*args)
        for name, call in paths.items():
            if name != "kernel backward":
                torch.testing.assert_close(call(*args), expected, rtol=1e-10, atol=1e-10, msg=name)
        return
    for name, call in paths.items():
        with pytest.raises(ValueError, match="spatial_shapes|level_start_index"):
            call(*args)
    monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    with pytest.raises(ValueError, match="spatial_shapes|level_start_index"):
        torch.ops.mask2former.ms_deform_attn(*args)


# ------------------------------------------------------------------------------------------------
# CUDA (run on a GPU machine)
# ------------------------------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@fuzz_settings(15)
@given(problem=problems(location_kinds=st.just(["inside", "border", "outside", "nonfinite"])))
def test_cuda_kernel_half_precision_matches_float32_reference(dtype, problem):
    """float16 / bfloat16 compute in float32 ("far" locations are left out: float16 cannot hold them)."""
    args, grad = problem.inputs(dtype)
    got = operator_and_grads(args, grad, device="cuda")
    assert got[0].dtype == dtype
    tol = 4e-3 if dtype == torch.float16 else TOLERANCES[torch.bfloat16]
    assert_matches(got, reference_and_grads(args, grad, dtype=torch.float32), args[3], args[1], rtol=tol, atol=tol,
                   what=str(problem))
