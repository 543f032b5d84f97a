"""PointRend point sampling (segcore.layers.point_features)."""
import pytest
import torch

from segcore.layers import calculate_uncertainty, get_uncertain_point_coords_with_randomness, point_sample


def _pixel_centres(h, w):
    """(h*w, 2) normalized (x, y) of the pixel centres, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([(xs.flatten() + 0.5) / w, (ys.flatten() + 0.5) / h], dim=1)


def test_point_sample_at_pixel_centres_returns_pixel_values():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5)
    centres = _pixel_centres(4, 5)
    out = point_sample(x, centres.expand(2, -1, -1))
    assert out.shape == (2, 3, 20)
    torch.testing.assert_close(out, x.flatten(2), rtol=0, atol=1e-6)
    # a (N, Hgrid, Wgrid, 2) grid gives the map back in its own layout
    grid = centres.view(4, 5, 2).expand(2, -1, -1, -1)
    out_grid = point_sample(x, grid)
    assert out_grid.shape == (2, 3, 4, 5)
    torch.testing.assert_close(out_grid, x, rtol=0, atol=1e-6)


def test_point_sample_is_exact_bilinear_on_a_linear_ramp():
    h, w = 6, 8
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp = (2.0 * xs - 3.0 * ys + 1.0)[None, None]  # value at pixel centre (row i, col j)
    torch.manual_seed(1)
    # points between the first and last pixel centres, where no zero padding is involved
    u = torch.rand(1, 50, 2, dtype=torch.float64)
    pts = torch.stack([(0.5 + u[..., 0] * (w - 1)) / w, (0.5 + u[..., 1] * (h - 1)) / h], dim=-1)
    out = point_sample(ramp, pts)
    col = pts[..., 0] * w - 0.5  # continuous column index
    row = pts[..., 1] * h - 0.5
    torch.testing.assert_close(out[:, 0], 2.0 * col - 3.0 * row + 1.0, rtol=0, atol=1e-10)


def test_point_sample_halfway_between_pixels_and_outside():
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])
    pts = torch.tensor([[[0.5, 0.25], [0.5, 0.5], [0.0, 0.25], [-0.5, 0.5]]])
    out = point_sample(x, pts)[0, 0]
    # midpoint of the top row; centre of the map; the left edge (half zero padding); far outside
    torch.testing.assert_close(out, torch.tensor([2.0, 4.0, 0.5, 0.0]))


def test_point_sample_passes_kwargs_to_grid_sample():
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])
    corner = torch.tensor([[[0.0, 0.0]]])
    assert point_sample(x, corner)[0, 0, 0].item() == pytest.approx(0.25)  # a quarter of pixel (0, 0)
    assert point_sample(x, corner, align_corners=True)[0, 0, 0].item() == pytest.approx(1.0)
    near = torch.tensor([[[0.3, 0.3]]])
    assert point_sample(x, near, mode="nearest")[0, 0, 0].item() == 1.0
    assert point_sample(x, torch.tensor([[[0.0, 0.25]]]), padding_mode="border")[0, 0, 0].item() == pytest.approx(1.0)


def test_point_sample_gradients_flow_to_the_input():
    x = torch.zeros(1, 2, 3, 4, requires_grad=True)
    pts = torch.tensor([[[1.5 / 4, 0.5 / 3], [1.5 / 4, 0.5 / 3], [(2.0 + 0.5) / 4 - 0.125, 2.5 / 3]]])
    point_sample(x, pts).sum().backward()
    expected = torch.zeros(3, 4)
    expected[0, 1] = 2.0  # sampled twice at its centre
    expected[2, 1] = expected[2, 2] = 0.5  # halfway between two centres
    torch.testing.assert_close(x.grad, expected.expand(1, 2, 3, 4))


def test_point_sample_promotes_to_the_wider_dtype():
    x = torch.arange(4, dtype=torch.float64).view(1, 1, 2, 2)
    out = point_sample(x, _pixel_centres(2, 2)[None].float())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, x.flatten(2))
    # float32 points on a bfloat16 map are not rounded to bfloat16: a ramp read between pixels
    ramp = torch.arange(256, dtype=torch.bfloat16).view(1, 1, 1, 256)  # integers <= 256 are exact in bfloat16
    coords = torch.tensor([[[200.3 / 256, 0.5]]])  # between the centres of pixels 199 and 200
    out = point_sample(ramp, coords)
    assert out.dtype == torch.float32
    assert abs(out.item() - 199.8) < 1e-3
    rounded = point_sample(ramp, coords.to(torch.bfloat16))  # what casting the points down gives
    assert abs(rounded.item() - 199.8) > 0.1


@pytest.mark.parametrize(
    "input_shape,coords_shape,match",
    [
        ((1, 2, 3), (1, 4, 2), "input"),
        ((1, 1, 3, 3), (4, 2), "point_coords"),
        ((1, 1, 3, 3), (1, 4, 3), "point_coords"),
        ((1, 1, 3, 3), (1, 2, 2, 2, 2), "point_coords"),
        ((2, 1, 3, 3), (1, 4, 2), "batch size"),
    ],
)
def test_point_sample_rejects_bad_shapes(input_shape, coords_shape, match):
    with pytest.raises(ValueError, match=match):
        point_sample(torch.zeros(input_shape), torch.zeros(coords_shape))


def test_calculate_uncertainty():
    logits = torch.tensor([[[-3.0, 0.0, 0.5, 2.0]]])
    torch.testing.assert_close(calculate_uncertainty(logits), torch.tensor([[[-3.0, 0.0, -0.5, -2.0]]]))
    assert calculate_uncertainty(torch.zeros(2, 1, 3, 3)).shape == (2, 1, 3, 3)
    with pytest.raises(ValueError, match=r"\(R, 1"):
        calculate_uncertainty(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError):
        calculate_uncertainty(torch.zeros(5))


def _band_logits(n=2, size=32, band=(8, 24)):
    """(n, 1, size, size) logits: 0 (most uncertain) in columns band[0]..band[1]-1, +-10 elsewhere."""
    logits = torch.full((n, 1, size, size), 10.0)
    logits[..., size // 2 :, :] = -10.0
    logits[..., band[0] : band[1]] = 0.0
    return logits


def test_uncertain_points_with_importance_ratio_one_are_the_most_uncertain():
    size, band = 32, (8, 24)
    logits = _band_logits(size=size, band=band)
    torch.manual_seed(0)
    pts = get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 40, 3, 1.0)
    assert pts.shape == (2, 40, 2)
    # every chosen point lies where the interpolated logit is exactly 0: between the centres of
    # the first and last zero columns (half the candidates fall there, 1.5x the points wanted)
    lo, hi = (band[0] + 0.5) / size, (band[1] - 0.5) / size
    assert bool(((pts[..., 0] >= lo) & (pts[..., 0] <= hi)).all())
    assert torch.equal(point_sample(logits, pts), torch.zeros(2, 1, 40))


def test_uncertain_points_are_the_top_candidates_in_detectron2_draw_order():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 7, 9)
    torch.manual_seed(5)
    pts = get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 20, 2.5, 0.75)
    torch.manual_seed(5)
    candidates = torch.rand(3, 50, 2)  # the k*N candidates are the first draw
    random_points = torch.rand(3, 5, 2)  # the (1 - beta)*N uniform points the second
    scores = calculate_uncertainty(point_sample(logits, candidates))[:, 0]
    order = scores.argsort(dim=1, descending=True)[:, :15]
    torch.testing.assert_close(pts[:, :15], torch.gather(candidates, 1, order[..., None].expand(-1, -1, 2)))
    torch.testing.assert_close(pts[:, 15:], random_points)


def test_importance_ratio_zero_gives_uniform_points_independent_of_the_logits():
    other_logits = torch.randn(2, 1, 5, 5)
    torch.manual_seed(3)
    a = get_uncertain_point_coords_with_randomness(_band_logits(), calculate_uncertainty, 500, 3, 0.0)
    torch.manual_seed(3)
    b = get_uncertain_point_coords_with_randomness(other_logits, calculate_uncertainty, 500, 3, 0.0)
    torch.testing.assert_close(a, b)
    assert a.shape == (2, 500, 2) and a.dtype == torch.get_default_dtype()
    assert bool((a >= 0).all() and (a <= 1).all())
    # uniform on the square: the band (half the width) holds about half the points
    in_band = ((a[..., 0] >= 0.25) & (a[..., 0] < 0.75)).float().mean().item()
    assert 0.4 < in_band < 0.6
    assert abs(a.mean().item() - 0.5) < 0.05


def test_mixed_ratio_shapes_ranges_and_no_grad():
    logits = _band_logits().requires_grad_(True)
    torch.manual_seed(0)
    pts = get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 33, 2, 0.5)
    assert pts.shape == (2, 33, 2) and not pts.requires_grad
    assert bool((pts >= 0).all() and (pts <= 1).all())
    assert bool(((pts[:, :16, 0] >= 8.5 / 32) & (pts[:, :16, 0] <= 23.5 / 32)).all())
    empty = get_uncertain_point_coords_with_randomness(torch.zeros(0, 1, 4, 4), calculate_uncertainty, 10, 3, 0.75)
    assert empty.shape == (0, 10, 2)
    assert get_uncertain_point_coords_with_randomness(logits, calculate_uncertainty, 0, 3, 0.75).shape == (2, 0, 2)


@pytest.mark.parametrize(
    "logits_shape,kwargs,match",
    [
        ((2, 1, 4), {}, "coarse_logits"),
        ((2, 1, 4, 4), {"oversample_ratio": 0.5}, "oversample_ratio"),
        ((2, 1, 4, 4), {"importance_sample_ratio": 1.5}, "importance_sample_ratio"),
        ((2, 1, 4, 4), {"importance_sample_ratio": -0.1}, "importance_sample_ratio"),
        ((2, 1, 4, 4), {"num_points": -1}, "num_points"),
        ((2, 1, 4, 4), {"uncertainty_func": lambda x: x[:, 0]}, "uncertainty_func"),
    ],
)
def test_uncertain_points_validate_arguments(logits_shape, kwargs, match):
    args = dict(uncertainty_func=calculate_uncertainty, num_points=8, oversample_ratio=3, importance_sample_ratio=0.75)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        get_uncertain_point_coords_with_randomness(torch.zeros(logits_shape), **args)
