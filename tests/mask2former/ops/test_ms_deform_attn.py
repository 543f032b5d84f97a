"""ms_deform_attn (Deformable DETR, Eq. 3) against a naive bilinear implementation written here,
its gradients (float64 gradcheck), its conventions, and its input checks."""
import math

import pytest
import torch

from mask2former.ops import ms_deform_attn, ms_deform_attn_pytorch


def naive_ms_deform_attn(value, shapes, locations, weights):
    """Eq. 3 with explicit loops: bilinear interpolation with pixel centres at (j + 0.5, i + 0.5)
    (in pixels; align_corners=False) and zero outside the map. float64 (N, Lq, M * D)."""
    n_batch, _, n_heads, dim = value.shape
    _, n_queries, _, n_levels, n_points, _ = locations.shape
    starts = [sum(h * w for h, w in shapes[:i]) for i in range(len(shapes))]
    out = torch.zeros(n_batch, n_queries, n_heads, dim, dtype=torch.float64)
    for n in range(n_batch):
        for q in range(n_queries):
            for m in range(n_heads):
                for lvl, (h, w) in enumerate(shapes):
                    for p in range(n_points):
                        # continuous pixel coordinates with pixel centres at integers
                        x = locations[n, q, m, lvl, p, 0].item() * w - 0.5
                        y = locations[n, q, m, lvl, p, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        fx, fy = x - x0, y - y0
                        sample = torch.zeros(dim, dtype=torch.float64)
                        for yy, xx, c in ((y0, x0, (1 - fy) * (1 - fx)), (y0, x0 + 1, (1 - fy) * fx),
                                          (y0 + 1, x0, fy * (1 - fx)), (y0 + 1, x0 + 1, fy * fx)):
                            if 0 <= yy < h and 0 <= xx < w:
                                sample += c * value[n, starts[lvl] + yy * w + xx, m].double()
                        out[n, q, m] += weights[n, q, m, lvl, p].item() * sample
    return out.reshape(n_batch, n_queries, n_heads * dim)


def make_inputs(batch, shapes, queries, heads=2, dim=3, points=2, seed=0, dtype=torch.float64, low=-0.3, high=1.3):
    """Random inputs; locations uniform in [low, high]^2 (outside [0, 1] when low < 0 or high > 1)."""
    g = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(shapes, dtype=torch.int64)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))
    value = torch.randn(batch, int(sizes.sum()), heads, dim, generator=g, dtype=dtype)
    locations = low + (high - low) * torch.rand(batch, queries, heads, len(shapes), points, 2, generator=g, dtype=dtype)
    weights = torch.rand(batch, queries, heads, len(shapes), points, generator=g, dtype=dtype)
    return value, spatial_shapes, level_start_index, locations, weights


@pytest.mark.parametrize("batch,shapes,queries", [
    (1, [(4, 4)], 5),                      # one square level
    (3, [(5, 7), (3, 2), (1, 4)], 4),      # several non-square levels, batch 3
    (1, [(2, 6), (6, 2)], 3),              # transposed shapes: catches (H, W) / (x, y) swaps
    (3, [(3, 5), (2, 2)], 0),              # no query
])
def test_matches_naive_bilinear(batch, shapes, queries):
    inputs = make_inputs(batch, shapes, queries)
    out = ms_deform_attn(*inputs)
    value, _, _, locations, weights = inputs
    assert out.shape == (batch, queries, value.shape[2] * value.shape[3]) and out.dtype == torch.float64
    torch.testing.assert_close(out, naive_ms_deform_attn(value, shapes, locations, weights), rtol=1e-12, atol=1e-12)


def test_float32_matches_naive():
    inputs = make_inputs(2, [(6, 5), (3, 3)], 7, dtype=torch.float32, seed=3)
    value, _, _, locations, weights = inputs
    torch.testing.assert_close(ms_deform_attn(*inputs).double(), naive_ms_deform_attn(value, [(6, 5), (3, 3)],
                                                                                       locations, weights),
                               rtol=1e-5, atol=1e-5)


def test_pixel_centres_return_pixel_values_and_outside_is_zero():
    h, w = 3, 4
    value = torch.arange(h * w, dtype=torch.float64).view(1, h * w, 1, 1) + 1.0
    spatial_shapes, starts = torch.tensor([[h, w]]), torch.tensor([0])
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    centres = torch.stack(((j.flatten() + 0.5) / w, (i.flatten() + 0.5) / h), dim=-1).double()  # (x, y)
    locations = centres.view(1, h * w, 1, 1, 1, 2)
    out = ms_deform_attn(value, spatial_shapes, starts, locations, torch.ones(1, h * w, 1, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(out.flatten(), value.flatten())
    # the top-left corner (0, 0) is the corner of pixel (0, 0): a quarter of its value; far away: zero
    corner = torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 0.5], dtype=torch.float64).view(1, 3, 1, 1, 1, 2)
    out = ms_deform_attn(value, spatial_shapes, starts, corner, torch.ones(1, 3, 1, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.25, 0.25 * h * w, 0.0], dtype=torch.float64))


def test_weights_are_linear_and_heads_are_separate():
    inputs = make_inputs(1, [(4, 3), (2, 2)], 3, heads=3, dim=2, seed=5)
    value, shapes, starts, locations, weights = inputs
    out = ms_deform_attn(*inputs)
    torch.testing.assert_close(ms_deform_attn(value, shapes, starts, locations, 2.5 * weights), 2.5 * out)
    value2 = value.clone()
    value2[:, :, 1] = 0  # head 1's values only change head 1's channels (2:4)
    out2 = ms_deform_attn(value2, shapes, starts, locations, weights)
    torch.testing.assert_close(out2[..., :2], out[..., :2])
    torch.testing.assert_close(out2[..., 4:], out[..., 4:])
    assert out[..., 2:4].abs().sum() > 0 and torch.equal(out2[..., 2:4], torch.zeros_like(out2[..., 2:4]))


def test_reference_equals_checked_function(monkeypatch):
    """With the reference chosen (directly, or forced in the operator) the checked function returns
    exactly the reference's output; the compiled kernels' agreement is tested in
    test_ms_deform_attn_kernels.py."""
    inputs = make_inputs(3, [(5, 4), (2, 3)], 6, dtype=torch.float32, seed=7)
    expected = ms_deform_attn_pytorch(*inputs)
    assert torch.equal(ms_deform_attn(*inputs, impl="pytorch"), expected)
    monkeypatch.setenv("MSDA_FORCE_PYTORCH", "1")
    assert torch.equal(ms_deform_attn(*inputs), expected)


def test_gradcheck():
    value, shapes, starts, locations, weights = make_inputs(2, [(3, 4), (2, 2)], 2, heads=2, dim=2, points=2, seed=11,
                                                          low=-0.1, high=1.1)
    for t in (value, locations, weights):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, loc, w: ms_deform_attn(v, shapes, starts, loc, w),
                                    (value, locations, weights), eps=1e-6, atol=1e-6)


def test_gradients_are_nonzero_for_every_input():
    value, shapes, starts, locations, weights = make_inputs(1, [(3, 4)], 3, low=0.1, high=0.9, seed=2)
    for t in (value, locations, weights):
        t.requires_grad_(True)
    ms_deform_attn(value, shapes, starts, locations, weights).square().sum().backward()
    for t in (value, locations, weights):
        assert t.grad is not None and t.grad.abs().sum() > 0


def _valid():
    return list(make_inputs(2, [(3, 4), (2, 2)], 5, heads=2, dim=3, points=2, dtype=torch.float32))


def _with(index, new):
    args = _valid()
    args[index] = new(args[index]) if callable(new) else new
    return args


VALUE, SHAPES, STARTS, LOCATIONS, WEIGHTS = range(5)


@pytest.mark.parametrize("args,error,match", [
    (_with(VALUE, lambda v: v[0]), ValueError, r"value must be 4-D"),
    (_with(SHAPES, lambda s: s.flatten()), ValueError, r"spatial_shapes must be 2-D"),
    (_with(STARTS, lambda s: s[None]), ValueError, r"level_start_index must be 1-D"),
    (_with(LOCATIONS, lambda loc: loc[..., 0]), ValueError, r"sampling_locations must be 6-D"),
    (_with(WEIGHTS, lambda w: w[..., None]), ValueError, r"attention_weights must be 5-D"),
    (_with(VALUE, lambda v: v[:1]), ValueError, r"N \(batch\)"),
    (_with(WEIGHTS, lambda w: w[:, :, :1]), ValueError, r"M \(heads\)"),
    (_with(LOCATIONS, lambda loc: loc[:, :, :, :1]), ValueError, r"L \(levels\)"),
    (_with(STARTS, lambda s: s[:1]), ValueError, r"L \(levels\)"),
    (_with(WEIGHTS, lambda w: w[:, :3]), ValueError, r"Lq \(queries, dim 1\) or P"),
    (_with(WEIGHTS, lambda w: w[..., :1]), ValueError, r"Lq \(queries, dim 1\) or P"),
    (_with(LOCATIONS, lambda loc: torch.cat([loc, loc[..., :1]], -1)), ValueError, r"\(x, y\) pair"),
    (_with(SHAPES, lambda s: torch.cat([s, s[:, :1]], 1)), ValueError, r"rows of \(H, W\)"),
    (_with(SHAPES, torch.tensor([[3, 4], [0, 2]])), ValueError, r"positive"),
    (_with(SHAPES, torch.tensor([[3, 4], [2, 3]])), ValueError, r"value has S = 16 positions but spatial_shapes"),
    (_with(STARTS, torch.tensor([0, 11])), ValueError, r"level_start_index \[0, 11\] is inconsistent"),
    (_with(STARTS, torch.tensor([1, 12])), ValueError, r"level_start_index \[1, 12\] is inconsistent"),
    (_with(SHAPES, lambda s: s.float()), TypeError, r"spatial_shapes must be an integer tensor"),
    (_with(STARTS, lambda s: s.bool()), TypeError, r"level_start_index must be an integer tensor"),
    (_with(LOCATIONS, lambda loc: loc.double()), TypeError, r"must have one dtype"),
    (_with(WEIGHTS, lambda w: w.half()), TypeError, r"must have one dtype"),
    (_with(VALUE, lambda v: v.long()), TypeError, r"value must be a floating-point tensor"),
    (_with(SHAPES, [[3, 4], [2, 2]]), TypeError, r"spatial_shapes must be a torch.Tensor"),
])
@pytest.mark.parametrize("impl", ["auto", "pytorch"])
def test_invalid_inputs_raise(args, error, match, impl):
    """The same error from the operator (the kernel's checks for the level values) and from the
    reference called directly (see test_ms_deform_attn_checks.py for every other path)."""
    with pytest.raises(error, match=match):
        ms_deform_attn(*args, impl=impl)


def test_int32_shapes_accepted():
    args = _valid()
    expected = ms_deform_attn(*args)
    args[SHAPES], args[STARTS] = args[SHAPES].int(), args[STARTS].int()
    assert torch.equal(ms_deform_attn(*args), expected)
