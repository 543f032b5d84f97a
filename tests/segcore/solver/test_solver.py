"""Optimizer parameter groups, gradient clipping and lr schedules (segcore.solver)."""
import math

import pytest
import torch
from torch import nn

from segcore.config import get_cfg
from segcore.layers import FrozenBatchNorm2d
from segcore.solver import WarmupPolyLR, build_lr_scheduler, build_optimizer


class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)
        self.frozen = FrozenBatchNorm2d(4)
        self.absolute_pos_embed = nn.Parameter(torch.zeros(1, 4))


class ToyModel(nn.Module):
    """One parameter of each kind that the parameter-group policies (Detectron2's here, MaskFormer's
    in tests/mask_former/test_solver.py) tell apart: backbone, norms (frozen too), biases, embedding,
    position tables, a module shared under two names and a frozen layer."""

    def __init__(self):
        super().__init__()
        self.backbone = _Backbone()
        self.norm = nn.LayerNorm(4)
        self.gn = nn.GroupNorm(2, 4)
        self.query_embed = nn.Embedding(5, 4)
        self.predictor = nn.Linear(4, 3)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3))
        self.shared = self.predictor  # the same parameters under two names
        self.frozen_linear = nn.Linear(2, 2).requires_grad_(False)


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.WEIGHT_DECAY = 0.05
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.01
    cfg.SOLVER.BIAS_LR_FACTOR = 0.1
    for k, v in solver.items():
        setattr(cfg.SOLVER, k, v)
    return cfg


def _group_of(optimizer, param):
    groups = [g for g in optimizer.param_groups if any(p is param for p in g["params"])]
    assert len(groups) == 1, "each parameter must be in exactly one group"
    return groups[0]


@pytest.mark.parametrize("name", ["SGD", "ADAMW"])
def test_default_param_groups_lr_and_weight_decay(name):
    """Detectron2's default policy: norms get WEIGHT_DECAY_NORM, biases BIAS_LR_FACTOR x lr and
    WEIGHT_DECAY_BIAS, everything else (backbone, embeddings, position tables) the defaults."""
    model = ToyModel()
    opt = build_optimizer(_cfg(OPTIMIZER=name, WEIGHT_DECAY_BIAS=0.03), model)
    expected = {
        # (lr, weight_decay)
        model.backbone.conv.weight: (0.1, 0.05),
        model.backbone.conv.bias: (0.01, 0.03),
        model.backbone.bn.weight: (0.1, 0.01),
        model.backbone.bn.bias: (0.01, 0.03),
        model.backbone.absolute_pos_embed: (0.1, 0.05),
        model.norm.weight: (0.1, 0.01),
        model.gn.bias: (0.01, 0.03),
        model.query_embed.weight: (0.1, 0.05),
        model.predictor.weight: (0.1, 0.05),
        model.relative_position_bias_table: (0.1, 0.05),
    }
    for p, (lr, wd) in expected.items():
        g = _group_of(opt, p)
        assert g["lr"] == pytest.approx(lr)
        assert g["weight_decay"] == pytest.approx(wd)
    # one group per trainable parameter; shared parameters once; frozen ones left out
    all_params = [p for g in opt.param_groups for p in g["params"]]
    assert all(len(g["params"]) == 1 for g in opt.param_groups)
    assert len(all_params) == len({id(p) for p in all_params})
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in all_params} == trainable
    assert isinstance(opt, torch.optim.SGD if name == "SGD" else torch.optim.AdamW)


def test_a_model_chooses_its_own_param_groups():
    class _Choosing(ToyModel):
        def optimizer_param_groups(self, cfg):
            return [{"params": [self.predictor.weight], "lr": 7.0, "weight_decay": 0.0}]

    model = _Choosing()
    opt = build_optimizer(_cfg(), model)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 7.0
    assert opt.param_groups[0]["params"][0] is model.predictor.weight


def test_sgd_momentum_and_nesterov_from_config():
    opt = build_optimizer(_cfg(MOMENTUM=0.8, NESTEROV=True), nn.Linear(2, 2))
    assert all(g["momentum"] == 0.8 and g["nesterov"] for g in opt.param_groups)


def test_unknown_optimizer_is_a_clear_error():
    with pytest.raises(ValueError, match="LAMB"):
        build_optimizer(_cfg(OPTIMIZER="LAMB"), nn.Linear(2, 2))


def _two_param_step(cfg):
    """Params with gradients of norm 3 and 4 (total 5); one SGD step with lr 1, no decay."""
    a = nn.Parameter(torch.zeros(1))
    b = nn.Parameter(torch.zeros(1))
    model = nn.Module()
    model.a, model.b = a, b
    opt = build_optimizer(cfg, model)
    a.grad = torch.tensor([3.0])
    b.grad = torch.tensor([4.0])
    opt.step()
    return -a.detach().item(), -b.detach().item()


def _clip_cfg(clip_type, value):
    cfg = _cfg(BASE_LR=1.0, MOMENTUM=0.0, WEIGHT_DECAY=0.0, BIAS_LR_FACTOR=1.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = clip_type
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = value
    return cfg


def test_full_model_gradient_clipping_scales_the_total_norm():
    # total norm 5 clipped to 1: both gradients scaled by 1/5 (direction kept)
    ga, gb = _two_param_step(_clip_cfg("full_model", 1.0))
    assert ga == pytest.approx(0.6, rel=1e-4)
    assert gb == pytest.approx(0.8, rel=1e-4)
    # per-parameter norm clipping gives a different result: each gradient clipped to norm 1
    ga, gb = _two_param_step(_clip_cfg("norm", 1.0))
    assert (ga, gb) == (pytest.approx(1.0, rel=1e-4), pytest.approx(1.0, rel=1e-4))
    # value clipping: each element clamped
    ga, gb = _two_param_step(_clip_cfg("value", 3.5))
    assert (ga, gb) == (pytest.approx(3.0), pytest.approx(3.5))
    # a norm below the limit is not changed
    ga, gb = _two_param_step(_clip_cfg("full_model", 10.0))
    assert (ga, gb) == (pytest.approx(3.0), pytest.approx(4.0))
    # disabled
    cfg = _clip_cfg("full_model", 1.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    assert _two_param_step(cfg) == (pytest.approx(3.0), pytest.approx(4.0))


def test_unknown_clip_type_is_a_clear_error():
    with pytest.raises(ValueError, match="CLIP_TYPE 'elementwise'"):
        build_optimizer(_clip_cfg("elementwise", 1.0), nn.Linear(2, 2))


def _poly_expected(i, base_lr, max_iter, warmup_iters, warmup_factor, power, constant_ending=0.0):
    if i < warmup_iters:
        alpha = i / warmup_iters
        warmup = warmup_factor * (1 - alpha) + alpha
    else:
        warmup = 1.0
    poly = (1 - i / max_iter) ** power
    if constant_ending > 0 and warmup == 1.0 and poly < constant_ending:
        return base_lr * constant_ending
    return base_lr * warmup * poly


def _lrs(scheduler, n):
    """lr of the first group at iterations 0..n-1 (the trainer steps after each iteration)."""
    out = []
    for _ in range(n):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("constant_ending", [0.0, 0.3])
def test_warmup_poly_lr_matches_the_formula(constant_ending):
    cfg = _cfg(
        LR_SCHEDULER_NAME="WarmupPolyLR", MAX_ITER=100, WARMUP_ITERS=10, WARMUP_FACTOR=0.01,
        POLY_LR_POWER=0.9, POLY_LR_CONSTANT_ENDING=constant_ending, BIAS_LR_FACTOR=1.0,
    )
    opt = build_optimizer(cfg, nn.Linear(2, 2))
    sched = build_lr_scheduler(cfg, opt)
    assert isinstance(sched, WarmupPolyLR)
    lrs = _lrs(sched, 100)
    for i in (0, 1, 5, 9, 10, 50, 70, 90, 99):
        assert lrs[i] == pytest.approx(_poly_expected(i, 0.1, 100, 10, 0.01, 0.9, constant_ending), rel=1e-9), i
    # spot values computed by hand
    assert lrs[0] == pytest.approx(0.1 * 0.01)
    assert lrs[50] == pytest.approx(0.1 * 0.5**0.9)
    if constant_ending:
        assert lrs[99] == pytest.approx(0.1 * 0.3)  # 0.01 ** 0.9 = 0.016 < 0.3


def test_multistep_and_cosine_values():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupMultiStepLR", MAX_ITER=20, WARMUP_ITERS=4, WARMUP_FACTOR=0.5,
               STEPS=(10, 15, 30), GAMMA=0.1, BIAS_LR_FACTOR=1.0)
    lrs = _lrs(build_lr_scheduler(cfg, build_optimizer(cfg, nn.Linear(2, 2))), 20)
    assert lrs[0] == pytest.approx(0.05)
    assert lrs[2] == pytest.approx(0.1 * (0.5 + 0.5 * 0.5))  # linear warmup half way
    assert lrs[4] == pytest.approx(0.1)
    assert lrs[10] == pytest.approx(0.01)
    assert lrs[15] == pytest.approx(0.001)

    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", MAX_ITER=20, WARMUP_ITERS=0, BASE_LR_END=0.0,
               BIAS_LR_FACTOR=1.0)
    lrs = _lrs(build_lr_scheduler(cfg, build_optimizer(cfg, nn.Linear(2, 2))), 20)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[10] == pytest.approx(0.05)
    assert lrs[5] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 5 / 20)))


def test_unknown_scheduler_is_a_clear_error():
    cfg = _cfg(LR_SCHEDULER_NAME="StepLR")
    with pytest.raises(ValueError, match="StepLR"):
        build_lr_scheduler(cfg, build_optimizer(cfg, nn.Linear(2, 2)))


@pytest.mark.parametrize("name", ["WarmupPolyLR", "WarmupMultiStepLR", "WarmupCosineLR"])
def test_scheduler_state_round_trip_continues_identically(name):
    cfg = _cfg(LR_SCHEDULER_NAME=name, MAX_ITER=30, WARMUP_ITERS=5, STEPS=(12,), OPTIMIZER="ADAMW")
    torch.manual_seed(0)
    model = ToyModel()
    opt = build_optimizer(cfg, model)
    sched = build_lr_scheduler(cfg, opt)
    _lrs(sched, 8)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    lrs_at_save = [g["lr"] for g in opt.param_groups]
    reference_next = []
    for _ in range(10):
        reference_next.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()

    # a fresh optimizer + scheduler (as after a restart) loading the saved states
    opt2 = build_optimizer(cfg, ToyModel())
    sched2 = build_lr_scheduler(cfg, opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.last_epoch == 8
    assert [g["lr"] for g in opt2.param_groups] == lrs_at_save
    resumed = []
    for _ in range(10):
        resumed.append([g["lr"] for g in opt2.param_groups])
        opt2.step()
        sched2.step()
    assert sum(resumed, []) == pytest.approx(sum(reference_next, []), rel=1e-12)
    # the backbone keeps its multiplier after resuming
    assert len({round(x, 12) for x in resumed[-1]}) == 2


def test_poly_state_holds_progress_not_shape():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupPolyLR", MAX_ITER=10, WARMUP_ITERS=0, BIAS_LR_FACTOR=1.0)
    opt = build_optimizer(cfg, nn.Linear(2, 2))
    sched = build_lr_scheduler(cfg, opt)
    _lrs(sched, 5)
    state = sched.state_dict()
    assert state["last_epoch"] == 5 and "max_iters" not in state
    # resumed with a longer schedule: the new MAX_ITER applies from the saved iteration on
    cfg.SOLVER.MAX_ITER = 20
    opt2 = build_optimizer(cfg, nn.Linear(2, 2))
    sched2 = build_lr_scheduler(cfg, opt2)
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 6 / 20) ** 0.9)
