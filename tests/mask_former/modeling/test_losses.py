"""Matcher, criterion and semantic inference on hand-built cases."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mask_former.inference import semantic_inference
from mask_former.modeling.criterion import SetCriterion, dice_loss, sigmoid_focal_loss
from mask_former.modeling.matcher import HungarianMatcher, batch_dice_loss, batch_sigmoid_focal_loss


def _logits_for(classes, num_classes, confidence=8.0):
    logits = torch.zeros(len(classes), num_classes + 1)
    logits[torch.arange(len(classes)), torch.tensor(classes)] = confidence
    return logits


def test_matcher_finds_the_obvious_assignment():
    # 3 queries, 2 targets: query 2 predicts target 0 exactly, query 0 predicts target 1.
    masks = torch.zeros(2, 8, 8)
    masks[0, :4] = 1
    masks[1, 4:] = 1
    pred_masks = torch.full((3, 8, 8), -10.0)
    pred_masks[2][masks[0].bool()] = 10
    pred_masks[0][masks[1].bool()] = 10
    outputs = {"pred_logits": _logits_for([1, 2, 2], 3)[None], "pred_masks": pred_masks[None]}
    targets = [{"labels": torch.tensor([2, 1]), "masks": masks}]
    (i, j), = HungarianMatcher(cost_class=1, cost_mask=20, cost_dice=1)(outputs, targets)
    assert dict(zip(i.tolist(), j.tolist())) == {0: 1, 2: 0}


def test_matcher_minimizes_total_cost_by_brute_force():
    torch.manual_seed(0)
    q, m = 5, 3
    outputs = {"pred_logits": torch.randn(1, q, 5), "pred_masks": torch.randn(1, q, 6, 6)}
    targets = [{"labels": torch.tensor([0, 3, 1]), "masks": torch.rand(m, 12, 12) > 0.5}]
    matcher = HungarianMatcher(cost_class=1, cost_mask=20, cost_dice=1)
    (i, j), = matcher(outputs, targets)
    cost = matcher.cost_matrix(outputs["pred_logits"][0], outputs["pred_masks"][0], targets[0]["labels"],
                               targets[0]["masks"])
    best = min(sum(cost[p[k], k] for k in range(m)) for p in itertools.permutations(range(q), m))
    assert cost[i, j].sum() == pytest.approx(best.item(), rel=1e-6)


def test_matcher_handles_images_without_targets():
    outputs = {"pred_logits": torch.randn(2, 4, 3), "pred_masks": torch.randn(2, 4, 5, 5)}
    targets = [{"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 10, 10)},
               {"labels": torch.tensor([1]), "masks": torch.ones(1, 10, 10)}]
    res = HungarianMatcher()(outputs, targets)
    assert len(res[0][0]) == 0 and len(res[1][0]) == 1


def test_pairwise_costs_equal_elementwise_losses():
    torch.manual_seed(1)
    x, t = torch.randn(4, 30), (torch.rand(3, 30) > 0.5).float()
    pair_dice, pair_focal = batch_dice_loss(x, t), batch_sigmoid_focal_loss(x, t)
    for a, b in itertools.product(range(4), range(3)):
        assert pair_dice[a, b].item() == pytest.approx(dice_loss(x[a:a + 1], t[b:b + 1], 1).item(), rel=1e-5)
        assert pair_focal[a, b].item() == pytest.approx(sigmoid_focal_loss(x[a:a + 1], t[b:b + 1], 1).item(), rel=1e-5)


def test_dice_and_focal_limits():
    t = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    perfect = torch.tensor([[50.0, 50.0, -50.0, -50.0]])
    assert dice_loss(perfect, t, 1).item() == pytest.approx(0.0, abs=1e-6)
    assert sigmoid_focal_loss(perfect, t, 1).item() == pytest.approx(0.0, abs=1e-6)
    # inverted prediction: no overlap, 2 predicted + 2 target pixels -> 1 - (0 + 1) / (4 + 1)
    assert dice_loss(-perfect, t, 1).item() == pytest.approx(0.8, abs=1e-4)
    # focal at p=0.5: mean over pixels of alpha_t * ln2 * 0.25
    half = torch.zeros(1, 4)
    expected = (0.25 * 2 + 0.75 * 2) / 4 * torch.log(torch.tensor(2.0)) * 0.25
    assert sigmoid_focal_loss(half, t, 1).item() == pytest.approx(expected.item(), rel=1e-6)


def test_criterion_unmatched_queries_target_no_object_with_eos_weight():
    num_classes = 3
    logits = torch.zeros(1, 2, num_classes + 1)
    masks = torch.zeros(1, 1, 4, 4)
    masks[0, 0, :2] = 1
    pred_masks = torch.where(masks.bool(), 10.0, -10.0).repeat(1, 2, 1, 1)
    crit = SetCriterion(num_classes=num_classes, matcher=HungarianMatcher(), weight_dict={}, eos_coef=0.1,
                        losses=["labels", "masks"])
    losses = crit({"pred_logits": logits, "pred_masks": pred_masks}, [{"labels": torch.tensor([2]), "masks": masks[0]}])
    # uniform logits: CE = ln(4) for each query; weighted mean = (1*ln4 + 0.1*ln4) / 1.1 = ln4
    assert losses["loss_ce"].item() == pytest.approx(torch.log(torch.tensor(4.0)).item(), rel=1e-6)
    logits2 = logits.clone()
    logits2[0, :, 2] = 5.0  # both predict class 2; the unmatched one should be "no object"
    l2 = crit({"pred_logits": logits2, "pred_masks": pred_masks}, [{"labels": torch.tensor([2]), "masks": masks[0]}])
    p = F.softmax(logits2[0, 0], -1)
    expected = (-torch.log(p[2]) * 1.0 + -torch.log(p[3]) * 0.1) / 1.1
    assert l2["loss_ce"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert l2["loss_dice"].item() < 1e-3


def test_criterion_deep_supervision_keys_and_unknown_loss():
    crit = SetCriterion(num_classes=2, matcher=HungarianMatcher(), weight_dict={}, eos_coef=0.1, losses=["labels", "masks"])
    out = {"pred_logits": torch.randn(1, 3, 3), "pred_masks": torch.randn(1, 3, 4, 4)}
    out["aux_outputs"] = [dict(out), dict(out)]
    losses = crit(out, [{"labels": torch.tensor([1]), "masks": torch.ones(1, 8, 8)}])
    assert set(losses) == {f"loss_{n}{s}" for n in ["ce", "mask", "dice"] for s in ["", "_0", "_1"]}
    with pytest.raises(KeyError, match="boxes"):
        SetCriterion(num_classes=2, matcher=HungarianMatcher(), weight_dict={}, eos_coef=0.1, losses=["boxes"])


def test_criterion_without_any_target_gives_zero_mask_loss_with_gradient():
    crit = SetCriterion(num_classes=2, matcher=HungarianMatcher(), weight_dict={}, eos_coef=0.1, losses=["labels", "masks"])
    pred = torch.randn(1, 3, 4, 4, requires_grad=True)
    losses = crit({"pred_logits": torch.randn(1, 3, 3), "pred_masks": pred},
                  [{"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 8, 8)}])
    assert losses["loss_mask"].item() == 0 and losses["loss_dice"].item() == 0
    (losses["loss_mask"] + losses["loss_ce"]).backward()
    assert pred.grad is not None


def test_semantic_inference_marginalizes_over_queries():
    mask_cls = torch.tensor([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])  # last query: no object
    mask_pred = torch.full((3, 2, 2), -20.0)
    mask_pred[0, 0] = 20.0  # top row: class 0
    mask_pred[1, 1] = 20.0  # bottom row: class 1
    mask_pred[2] = 20.0  # no-object query everywhere: ignored
    out = semantic_inference(mask_cls, mask_pred)
    assert out.shape == (2, 2, 2)
    assert out.argmax(0).tolist() == [[0, 0], [1, 1]]
    p = F.softmax(mask_cls, -1)
    torch.testing.assert_close(out[:, 0, 0], p[0, :2] + p[2, :2] * 1.0 + p[1, :2] * torch.sigmoid(torch.tensor(-20.0)))


class _RecordingMatcher(HungarianMatcher):
    """A HungarianMatcher that records whether it was called."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, outputs, targets):
        self.calls += 1
        return super().forward(outputs, targets)


def _deep_outputs(num_aux=2, q=3, k=2, size=4):
    torch.manual_seed(0)
    out = {"pred_logits": torch.randn(1, q, k + 1), "pred_masks": torch.randn(1, q, size, size)}
    out["aux_outputs"] = [{"pred_logits": torch.randn(1, q, k + 1), "pred_masks": torch.randn(1, q, size, size)}
                          for _ in range(num_aux)]
    return out


def _one_target(size=4):
    masks = torch.zeros(1, size, size)
    masks[0, :2] = 1
    return [{"labels": torch.tensor([1]), "masks": masks}]


@pytest.mark.parametrize("layer,name,value", [
    (0, "pred_masks", float("nan")),  # the first decoder layer's masks
    (1, "pred_logits", float("inf")),
    (None, "pred_masks", float("-inf")),  # the final outputs
])
def test_criterion_refuses_non_finite_predictions_before_matching(layer, name, value):
    matcher = _RecordingMatcher()
    crit = SetCriterion(num_classes=2, matcher=matcher, weight_dict={}, eos_coef=0.1, losses=["labels", "masks"])
    outputs = _deep_outputs()
    crit(outputs, _one_target())  # finite predictions: matched and scored
    assert matcher.calls == 3

    target = outputs if layer is None else outputs["aux_outputs"][layer]
    target[name][0, 1].view(-1)[0] = value
    matcher.calls = 0
    with pytest.raises(FloatingPointError) as e:
        crit(outputs, _one_target())
    assert matcher.calls == 0  # raised before the matcher (scipy) saw the values
    msg = str(e.value)
    where = "the final outputs (decoder layer 3 of 3)" if layer is None else f"aux_outputs[{layer}] (decoder layer {layer + 1} of 3)"
    kind = "1 NaN and 0 inf" if value != value else "0 NaN and 1 inf"
    assert f"{name} of {where}: {kind}" in msg
    assert msg.count(" of aux_outputs[") + msg.count(" of the final outputs") == 1  # only the bad output is named
