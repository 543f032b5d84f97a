"""MSDeformAttn: the original initialization, sampling locations for points and boxes, the padding
mask, shapes and argument checks."""
import math
import warnings

import pytest
import torch

from mask2former.ops import MSDeformAttn, ms_deform_attn

SHAPES = torch.tensor([[6, 4], [3, 5]])  # non-square levels: (H, W) and (x, y) swaps show
STARTS = torch.tensor([0, 24])
S = 24 + 15


def _module(**kw):
    torch.manual_seed(0)
    args = dict(d_model=16, n_levels=2, n_heads=4, n_points=3)
    args.update(kw)
    return MSDeformAttn(**args)


def test_initial_offsets_point_in_the_heads_directions():
    m = _module(d_model=32, n_heads=8, n_points=3)
    assert torch.equal(m.sampling_offsets.weight, torch.zeros_like(m.sampling_offsets.weight))
    bias = m.sampling_offsets.bias.detach().view(8, 2, 3, 2)  # (heads, levels, points, (x, y))
    # head m points at angle 2 pi m / 8, scaled onto the square [-1, 1]^2; point k is k + 1 times as far
    directions = torch.tensor([[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]],
                              dtype=torch.float32)
    for k in range(3):
        for level in range(2):
            torch.testing.assert_close(bias[:, level, k], (k + 1) * directions, atol=1e-5, rtol=0)


def test_initial_attention_is_uniform_and_projections_xavier():
    m = _module()
    assert torch.equal(m.attention_weights.weight, torch.zeros_like(m.attention_weights.weight))
    assert torch.equal(m.attention_weights.bias, torch.zeros_like(m.attention_weights.bias))
    probs = m.attention_probabilities(torch.randn(2, 5, 16))
    assert probs.shape == (2, 5, 4, 2, 3)
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / 6))
    bound = math.sqrt(6 / (16 + 16))
    for proj in (m.value_proj, m.output_proj):
        assert proj.weight.abs().max() <= bound and proj.weight.std() > 0.4 * bound
        assert torch.equal(proj.bias, torch.zeros_like(proj.bias))


def test_point_offsets_are_in_pixels_of_each_level():
    m = _module(n_heads=4, n_points=2)
    ref = torch.rand(1, 3, 2, 2)
    loc = m.sampling_locations(torch.randn(1, 3, 16), ref, SHAPES)
    assert loc.shape == (1, 3, 4, 2, 2, 2)
    # head 0 points along +x: point k moves (k + 1) pixels right on each level (W = 4, then 5)
    for level, width in enumerate((4, 5)):
        for k in range(2):
            torch.testing.assert_close(loc[0, :, 0, level, k], ref[0, :, level] + torch.tensor([(k + 1) / width, 0.0]))
    # head 1 points along +y: divided by the heights (6, then 3)
    torch.testing.assert_close(loc[0, :, 1, 1, 1], ref[0, :, 1] + torch.tensor([0.0, 2 / 3]), atol=1e-6, rtol=0)


def test_box_offsets_put_the_last_point_on_the_box_border():
    m = _module(n_heads=4, n_points=3)
    boxes = torch.tensor([0.5, 0.4, 0.2, 0.6]).expand(1, 2, 2, 4)  # (cx, cy, w, h)
    loc = m.sampling_locations(torch.randn(1, 2, 16), boxes, SHAPES)
    # heads 0..3 point right, down, left, up: the last point (k = 2) lies at half the box size
    expected = torch.tensor([[0.6, 0.4], [0.5, 0.7], [0.4, 0.4], [0.5, 0.1]])
    for head in range(4):
        torch.testing.assert_close(loc[0, :, head, :, 2], expected[head].expand(2, 2, 2), atol=1e-6, rtol=0)
    # the first point is a third of the way
    torch.testing.assert_close(loc[0, 0, 0, 0, 0], torch.tensor([0.5 + 0.1 / 3, 0.4]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("last", [2, 4])
def test_forward_is_projection_of_ms_deform_attn(last):
    m = _module()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))  # non-uniform attention, query-dependent offsets
    query, x = torch.randn(2, 5, 16), torch.randn(2, S, 16)
    ref = torch.rand(2, 5, 2, last)
    out = m(query, ref, x, SHAPES, STARTS)
    value = m.value_proj(x).view(2, S, 4, 4)
    expected = m.output_proj(ms_deform_attn(value, SHAPES, STARTS, m.sampling_locations(query, ref, SHAPES),
                                            m.attention_probabilities(query)))
    assert out.shape == (2, 5, 16)
    torch.testing.assert_close(out, expected)


def test_padding_mask_removes_the_masked_values():
    m = _module()
    with torch.no_grad():
        m.value_proj.bias.normal_()  # a masked position would otherwise contribute this bias
    query, x, ref = torch.randn(2, 7, 16), torch.randn(2, S, 16), torch.rand(2, 7, 2, 2)
    mask = torch.zeros(2, S, dtype=torch.bool)
    mask[0, :10] = True
    mask[1, 24:] = True  # the whole second level of the second image
    out = m(query, ref, x, SHAPES, STARTS, mask)
    x_changed = torch.where(mask[..., None], torch.randn_like(x) * 100, x)
    torch.testing.assert_close(m(query, ref, x_changed, SHAPES, STARTS, mask), out)
    assert not torch.allclose(m(query, ref, x, SHAPES, STARTS), out)
    # everything masked: only the output projection's bias is left
    everything = m(query, ref, x, SHAPES, STARTS, torch.ones(2, S, dtype=torch.bool))
    torch.testing.assert_close(everything, m.output_proj.bias.expand(2, 7, 16))


@pytest.mark.parametrize("batch,queries", [(1, 4), (3, 2), (2, 0)])
def test_output_shapes(batch, queries):
    m = _module()
    query, ref = torch.randn(batch, queries, 16), torch.rand(batch, queries, 2, 2)
    out = m(query, ref, torch.randn(batch, S, 16), SHAPES, STARTS)
    assert out.shape == (batch, queries, 16)


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"d_model \(30\) must be divisible by n_heads \(4\)"):
        MSDeformAttn(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match=r"n_points must be a positive int"):
        MSDeformAttn(d_model=16, n_heads=4, n_points=0)
    with pytest.warns(UserWarning, match=r"d_model // n_heads = 6 is not a power of 2"):
        MSDeformAttn(d_model=24, n_heads=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MSDeformAttn(d_model=32, n_heads=4)


@pytest.mark.parametrize("change,match", [
    (dict(reference_points=torch.rand(2, 5, 2, 3)), r"must be 2 \(points\) or 4 \(boxes\)"),
    (dict(reference_points=torch.rand(2, 5, 3, 2)), r"reference_points must be \(N, Lq, n_levels, 2 or 4\)"),
    (dict(query=torch.randn(2, 5, 8)), r"query must be \(N, Lq, 16\)"),
    (dict(input_flatten=torch.randn(1, S, 16)), r"input_flatten must be \(N=2, S, 16\)"),
    (dict(input_spatial_shapes=SHAPES[:1]), r"input_spatial_shapes must be \(n_levels=2, 2\)"),
    (dict(input_padding_mask=torch.zeros(2, S)), r"input_padding_mask must be bool \(N, S\)"),
    (dict(input_flatten=torch.randn(2, S + 1, 16)), r"S = 40 positions"),
])
def test_forward_checks(change, match):
    args = dict(query=torch.randn(2, 5, 16), reference_points=torch.rand(2, 5, 2, 2),
                input_flatten=torch.randn(2, S, 16), input_spatial_shapes=SHAPES, input_level_start_index=STARTS,
                input_padding_mask=None)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        _module()(**args)
