"""Mask2Former's point-sampled matcher and criterion (Sec. 3.3) against dense computations."""
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from mask2former.modeling import matcher as matcher_module
from mask2former.modeling.criterion import PointSampledSetCriterion
from mask2former.modeling.losses import batch_sigmoid_ce_loss, sigmoid_ce_loss
from mask2former.modeling.matcher import PointSampledHungarianMatcher
from mask_former.modeling.criterion import CRITERION_REGISTRY, SetCriterion

NUM_CLASSES = 4


def _pixel_centres(h, w):
    """(1, h*w, 2) (x, y) points at the pixel centres of an h x w map, in row-major order."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(1, h * w, 2)


def _read_at_prediction_centres(masks):
    """What the centre of each pixel of a 1/4-resolution prediction reads in a full-resolution
    (M, 4h, 4w) target: that pixel's 4 x 4 block, at its centre, between the block's 4 middle
    pixels (normalized coordinates over the padded extent, align_corners=False)."""
    masks = masks.float()
    return (masks[:, 1::4, 1::4] + masks[:, 1::4, 2::4] + masks[:, 2::4, 1::4] + masks[:, 2::4, 2::4]) / 4


def _dense_bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, target, reduction="mean")


def _dense_dice(logits, target):
    prob = logits.sigmoid().flatten()
    target = target.flatten()
    return 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)


def _criterion(matcher, num_points=64, oversample_ratio=3.0, importance_sample_ratio=0.75, eos_coef=0.1):
    weights = {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    return PointSampledSetCriterion(num_classes=NUM_CLASSES, matcher=matcher, weight_dict=weights, eos_coef=eos_coef,
                                    losses=["labels", "masks"], num_points=num_points,
                                    oversample_ratio=oversample_ratio, importance_sample_ratio=importance_sample_ratio)


class _FixedMatcher(nn.Module):
    """Returns a given assignment, so a test controls which pairs are supervised."""

    def __init__(self, indices):
        super().__init__()
        self.indices = [(torch.tensor(i), torch.tensor(j)) for i, j in indices]

    def forward(self, outputs, targets):
        return self.indices


def _batch(seed, pred_size=8, num_masks=(2, 1), num_queries=3):
    """Random predictions at 1/4 resolution; random binary targets at full resolution."""
    g = torch.Generator().manual_seed(seed)
    b = len(num_masks)
    outputs = {"pred_logits": torch.randn(b, num_queries, NUM_CLASSES + 1, generator=g),
               "pred_masks": 3 * torch.randn(b, num_queries, pred_size, pred_size, generator=g)}
    targets = []
    for m in num_masks:
        targets.append({"labels": torch.randint(0, NUM_CLASSES, (m,), generator=g),
                        "masks": torch.rand(m, 4 * pred_size, 4 * pred_size, generator=g) > 0.5})
    return outputs, targets


# ---------------------------------------------------------------- losses


def test_pairwise_bce_cost_equals_per_pair_loss():
    torch.manual_seed(0)
    x, t = 4 * torch.randn(4, 50), torch.rand(3, 50)  # fractional targets too (mask borders)
    pairwise = batch_sigmoid_ce_loss(x, t)
    assert pairwise.shape == (4, 3)
    for n in range(4):
        for m in range(3):
            expected = sigmoid_ce_loss(x[n:n + 1], t[m:m + 1], 1)
            assert pairwise[n, m].item() == pytest.approx(expected.item(), rel=1e-5)


def test_sigmoid_ce_loss_limits():
    t = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert sigmoid_ce_loss(torch.zeros(1, 4), t, 1).item() == pytest.approx(math.log(2), rel=1e-6)
    assert sigmoid_ce_loss(torch.tensor([[40.0, -40.0, 40.0, -40.0]]), t, 1).item() == pytest.approx(0, abs=1e-6)
    two_masks = torch.zeros(2, 4)
    assert sigmoid_ce_loss(two_masks, t.repeat(2, 1), 4).item() == pytest.approx(math.log(2) / 2, rel=1e-6)


# ---------------------------------------------------------------- matcher


def test_matcher_point_costs_equal_dense_costs_at_pixel_centres(monkeypatch):
    outputs, targets = _batch(seed=1, num_masks=(3,), num_queries=5)
    matcher = PointSampledHungarianMatcher(cost_class=2, cost_mask=5, cost_dice=5, num_points=64)
    monkeypatch.setattr(matcher, "sample_points", lambda device: _pixel_centres(8, 8))
    logits, masks = outputs["pred_logits"][0], outputs["pred_masks"][0]
    tgt = targets[0]
    cost = matcher.cost_matrix(logits, masks, tgt["labels"], tgt["masks"])

    coarse_targets = _read_at_prediction_centres(tgt["masks"])
    prob = logits.softmax(-1)
    dense = torch.empty(5, 3)
    for n in range(5):
        for m in range(3):
            dense[n, m] = (-2 * prob[n, tgt["labels"][m]] + 5 * _dense_bce(masks[n], coarse_targets[m])
                           + 5 * _dense_dice(masks[n], coarse_targets[m]))
    assert cost.dtype == torch.float32
    torch.testing.assert_close(cost, dense, rtol=1e-5, atol=1e-5)

    (i, j), = matcher(outputs, targets)
    rows, cols = linear_sum_assignment(dense.numpy())
    assert dict(zip(i.tolist(), j.tolist())) == dict(zip(rows.tolist(), cols.tolist()))


def test_matcher_finds_the_obvious_assignment_with_random_points():
    torch.manual_seed(0)
    masks = torch.zeros(2, 32, 32, dtype=torch.bool)
    masks[0, :16] = True
    masks[1, 16:] = True
    pred_masks = torch.full((3, 8, 8), -10.0)
    pred_masks[2, :4] = 10  # query 2 draws target 0 (at 1/4 resolution), query 0 target 1
    pred_masks[0, 4:] = 10
    pred_logits = torch.zeros(3, NUM_CLASSES + 1)
    pred_logits[[0, 1, 2], [1, 2, 2]] = 8.0
    outputs = {"pred_logits": pred_logits[None], "pred_masks": pred_masks[None]}
    targets = [{"labels": torch.tensor([2, 1]), "masks": masks}]
    (i, j), = PointSampledHungarianMatcher(cost_class=2, cost_mask=5, cost_dice=5, num_points=200)(outputs, targets)
    assert dict(zip(i.tolist(), j.tolist())) == {0: 1, 2: 0}


def test_matcher_draws_uniform_points_shared_by_predictions_and_targets():
    matcher = PointSampledHungarianMatcher(num_points=500)
    points = matcher.sample_points(torch.device("cpu"))
    assert points.shape == (1, 500, 2) and points.dtype == torch.float32
    assert points.min() >= 0 and points.max() < 1
    # a prediction equal to a (full-resolution) target scores the lowest BCE cost on any points
    torch.manual_seed(3)
    target = torch.rand(2, 16, 16) > 0.5
    preds = torch.stack([torch.where(target[0], 20.0, -20.0), torch.where(target[1], 20.0, -20.0)])
    cost = matcher.cost_matrix(torch.zeros(2, 3), preds, torch.tensor([0, 0]), target)
    assert cost.argmin(0).tolist() == [0, 1]


def test_matcher_handles_images_without_targets():
    outputs, targets = _batch(seed=2, num_masks=(0, 2))
    (i0, j0), (i1, j1) = PointSampledHungarianMatcher(num_points=32)(outputs, targets)
    assert len(i0) == len(j0) == 0
    assert len(i1) == len(j1) == 2


def test_matcher_computes_in_float32_under_bf16_autocast(monkeypatch):
    outputs, targets = _batch(seed=4, num_masks=(3,), num_queries=4)
    logits_bf16 = outputs["pred_logits"][0].bfloat16()
    masks_bf16 = outputs["pred_masks"][0].bfloat16()
    matcher = PointSampledHungarianMatcher(cost_class=2, cost_mask=5, cost_dice=5, num_points=128)

    seen = []
    original_cost = matcher_module.batch_sigmoid_ce_loss

    def spy(inputs, tgts):
        seen.append((inputs.dtype, tgts.dtype, torch.is_autocast_enabled("cpu")))
        return original_cost(inputs, tgts)

    monkeypatch.setattr(matcher_module, "batch_sigmoid_ce_loss", spy)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = matcher.cost_matrix(logits_bf16, masks_bf16, targets[0]["labels"], targets[0]["masks"])
    torch.manual_seed(0)
    reference = matcher.cost_matrix(logits_bf16.float(), masks_bf16.float(), targets[0]["labels"],
                                    targets[0]["masks"])
    assert seen[0] == (torch.float32, torch.float32, False)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, reference, rtol=0, atol=0)


def test_matcher_validates_arguments_and_reads_the_config():
    with pytest.raises(ValueError):
        PointSampledHungarianMatcher(num_points=0)
    with pytest.raises(ValueError):
        PointSampledHungarianMatcher(cost_class=0, cost_mask=0, cost_dice=0, num_points=10)
    cfg = _cfg()
    matcher = PointSampledHungarianMatcher(cfg)
    assert (matcher.cost_class, matcher.cost_mask, matcher.cost_dice, matcher.num_points) == (2.0, 5.0, 5.0, 64)


# ---------------------------------------------------------------- criterion


def test_point_losses_equal_dense_losses_at_pixel_centres(monkeypatch):
    outputs, targets = _batch(seed=5)
    indices = [([2, 0], [0, 1]), ([1], [0])]
    criterion = _criterion(_FixedMatcher(indices))
    calls = []

    def every_pixel_centre(mask_logits):
        calls.append(tuple(mask_logits.shape))
        return _pixel_centres(8, 8).expand(mask_logits.shape[0], -1, -1)

    monkeypatch.setattr(criterion, "sample_points", every_pixel_centre)
    losses = criterion(outputs, targets)
    assert calls == [(3, 1, 8, 8)]

    pairs = [(outputs["pred_masks"][b, q], _read_at_prediction_centres(targets[b]["masks"])[m])
             for b, (qs, ms) in enumerate(indices) for q, m in zip(qs, ms)]
    num_masks = 3
    dense_bce = sum(_dense_bce(p, t) for p, t in pairs) / num_masks
    dense_dice = sum(_dense_dice(p, t) for p, t in pairs) / num_masks
    assert losses["loss_mask"].item() == pytest.approx(dense_bce.item(), rel=1e-5)
    assert losses["loss_dice"].item() == pytest.approx(dense_dice.item(), rel=1e-5)
    # the class loss is MaskFormer's
    maskformer = SetCriterion(num_classes=NUM_CLASSES, matcher=_FixedMatcher(indices),
                              weight_dict=criterion.weight_dict, eos_coef=0.1, losses=["labels"])
    assert losses["loss_ce"].item() == pytest.approx(maskformer(outputs, targets)["loss_ce"].item(), rel=1e-6)


def _half_uncertain_batch():
    """One 16 x 16 predicted mask: logit 0 (most uncertain) on the left half, a confident and
    correct +30 on the right half; the target is the right half."""
    pred = torch.zeros(1, 1, 16, 16)
    pred[..., 8:] = 30.0
    target = torch.zeros(1, 16, 16, dtype=torch.bool)
    target[:, :, 8:] = True
    outputs = {"pred_logits": torch.zeros(1, 1, NUM_CLASSES + 1), "pred_masks": pred}
    return outputs, [{"labels": torch.tensor([0]), "masks": target}]


# logits are exactly 0 up to the centres of column 7; beyond that they blend with column 8's
PURE_UNCERTAIN_X = 7.5 / 16


def test_importance_sampling_puts_the_importance_points_in_the_uncertain_region():
    outputs, _ = _half_uncertain_batch()
    criterion = _criterion(_FixedMatcher([([0], [0])]), num_points=200)  # oversample 3, importance 0.75
    torch.manual_seed(0)
    points = criterion.sample_points(outputs["pred_masks"][0][:, None])
    assert points.shape == (1, 200, 2)
    assert (points[0, :150, 0] <= PURE_UNCERTAIN_X).all()  # the 150 importance points
    assert (points[0, 150:, 0] > 0.5).any()  # the 50 uniform ones cover the certain half too


def test_importance_sampled_losses_read_only_uncertain_points():
    outputs, targets = _half_uncertain_batch()
    torch.manual_seed(0)
    only_uncertain = _criterion(_FixedMatcher([([0], [0])]), num_points=200, importance_sample_ratio=1.0)
    losses = only_uncertain(outputs, targets)
    # every point has logit 0 and target 0: BCE ln 2, dice 1 - 1 / (0.5 P + 1)
    assert losses["loss_mask"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert losses["loss_dice"].item() == pytest.approx(1 - 1 / (0.5 * 200 + 1), rel=1e-6)
    torch.manual_seed(0)
    uniform = _criterion(_FixedMatcher([([0], [0])]), num_points=200, importance_sample_ratio=0.0)
    # uniform points also read the confident half and its borders (blended with the zero padding)
    assert abs(uniform(outputs, targets)["loss_mask"].item() - math.log(2)) > 0.1


def test_gradients_reach_matched_mask_logits_and_class_logits():
    outputs, targets = _batch(seed=6)
    outputs = {k: v.requires_grad_() for k, v in outputs.items()}
    criterion = _criterion(_FixedMatcher([([2, 0], [0, 1]), ([1], [0])]), num_points=100)
    losses = criterion(outputs, targets)
    sum(losses[k] * criterion.weight_dict[k] for k in losses).backward()
    mask_grad, logit_grad = outputs["pred_masks"].grad, outputs["pred_logits"].grad
    assert torch.isfinite(mask_grad).all() and torch.isfinite(logit_grad).all()
    matched = {(0, 2), (0, 0), (1, 1)}
    for b in range(2):
        for q in range(3):
            assert (mask_grad[b, q].abs().sum() > 0) == ((b, q) in matched)
        assert logit_grad[b].abs().sum() > 0


def test_losses_are_float32_under_bf16_autocast():
    outputs, targets = _batch(seed=7)
    outputs = {k: v.bfloat16().requires_grad_() for k, v in outputs.items()}
    criterion = _criterion(PointSampledHungarianMatcher(cost_class=2, cost_mask=5, cost_dice=5, num_points=64))
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = criterion(outputs, targets)
    torch.manual_seed(0)  # the same points, on the same values held in float32
    reference = criterion({k: v.detach().float() for k, v in outputs.items()}, targets)
    for name, value in losses.items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, reference[name], rtol=1e-5, atol=1e-6)
    losses["loss_mask"].backward()
    assert outputs["pred_masks"].grad.dtype == torch.bfloat16


def test_batch_without_targets_gives_finite_losses_and_zero_mask_losses():
    outputs, targets = _batch(seed=8, num_masks=(0, 0))
    outputs = {k: v.requires_grad_() for k, v in outputs.items()}
    criterion = _criterion(PointSampledHungarianMatcher(num_points=32))
    losses = criterion(outputs, targets)
    assert losses["loss_mask"].item() == 0 and losses["loss_dice"].item() == 0
    assert torch.isfinite(losses["loss_ce"]) and losses["loss_ce"].item() > 0
    sum(losses.values()).backward()
    assert torch.isfinite(outputs["pred_logits"].grad).all()

    outputs, targets = _batch(seed=8, num_masks=(0, 2))
    assert all(torch.isfinite(v) for v in criterion(outputs, targets).values())


def test_deep_supervision_adds_suffixed_losses_of_each_auxiliary_output():
    outputs, targets = _batch(seed=9)
    aux, _ = _batch(seed=10)
    outputs["aux_outputs"] = [aux, dict(aux, pred_logits=outputs["pred_logits"])]
    cfg = _cfg(deep_supervision=True, dec_layers=3)
    criterion = PointSampledSetCriterion(cfg, num_classes=NUM_CLASSES,
                                         matcher=_FixedMatcher([([2, 0], [0, 1]), ([1], [0])]))
    losses = criterion(outputs, targets)
    names = {"loss_ce", "loss_mask", "loss_dice"}
    assert set(losses) == names | {f"{n}_{i}" for n in names for i in (0, 1)}
    assert set(losses) == set(criterion.weight_dict)
    assert all(torch.isfinite(v) for v in losses.values())
    aux_alone = criterion(aux, targets)
    assert losses["loss_ce_0"].item() == pytest.approx(aux_alone["loss_ce"].item(), rel=1e-6)
    assert losses["loss_ce_1"].item() == pytest.approx(losses["loss_ce"].item(), rel=1e-6)
    assert losses["loss_ce_0"].item() != pytest.approx(losses["loss_ce"].item(), rel=1e-3)


def test_criterion_reads_the_config_and_validates_arguments():
    cfg = _cfg()
    criterion = PointSampledSetCriterion(cfg, num_classes=NUM_CLASSES, matcher=PointSampledHungarianMatcher(cfg))
    assert (criterion.num_points, criterion.oversample_ratio, criterion.importance_sample_ratio) == (64, 3.0, 0.75)
    assert criterion.weight_dict == {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    assert criterion.empty_weight[-1].item() == pytest.approx(0.1)
    matcher = PointSampledHungarianMatcher(num_points=8)
    with pytest.raises(ValueError):
        _criterion(matcher, num_points=0)
    with pytest.raises(ValueError):
        _criterion(matcher, oversample_ratio=0.5)
    with pytest.raises(ValueError):
        _criterion(matcher, importance_sample_ratio=1.5)
    with pytest.raises(KeyError):
        PointSampledSetCriterion(num_classes=NUM_CLASSES, matcher=matcher, weight_dict={}, eos_coef=0.1,
                                 losses=["boxes"], num_points=8, oversample_ratio=3, importance_sample_ratio=0.75)


# ---------------------------------------------------------------- wiring


def _cfg(deep_supervision=False, dec_layers=1, decoder_name=None):
    from mask2former.config import add_maskformer2_config
    from segcore.config import get_cfg

    cfg = get_cfg()
    add_maskformer2_config(cfg)
    mf = cfg.MODEL.MASK_FORMER
    mf.CLASS_WEIGHT, mf.MASK_WEIGHT, mf.DICE_WEIGHT, mf.NO_OBJECT_WEIGHT = 2.0, 5.0, 5.0, 0.1
    mf.TRAIN_NUM_POINTS = 64
    mf.DEEP_SUPERVISION, mf.DEC_LAYERS = deep_supervision, dec_layers
    if decoder_name is not None:
        mf.TRANSFORMER_DECODER_NAME = decoder_name
    return cfg


def test_a_decoder_naming_the_point_sampled_criterion_is_trained_with_it(monkeypatch):
    from mask_former.mask_former_model import MaskFormer
    from mask_former.modeling.transformer.registry import TRANSFORMER_DECODER_REGISTRY

    class FakePointSampledDecoder(nn.Module):
        criterion_name = "PointSampledSetCriterion"

    name = "_TestPointSampledCriterionFakeDecoder"
    monkeypatch.setitem(TRANSFORMER_DECODER_REGISTRY._obj_map, name, FakePointSampledDecoder)
    assert CRITERION_REGISTRY.get("PointSampledSetCriterion") is PointSampledSetCriterion
    cfg = _cfg(decoder_name=name)
    assert MaskFormer.criterion_class(cfg) is PointSampledSetCriterion
    criterion = MaskFormer.build_criterion(cfg, NUM_CLASSES)
    assert type(criterion) is PointSampledSetCriterion
    assert type(criterion.matcher) is PointSampledHungarianMatcher and criterion.matcher.num_points == 64
