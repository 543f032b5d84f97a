"""Optimizer construction: per-parameter groups and gradient clipping.

``build_optimizer`` follows the MaskFormer / Mask2Former ``train_net.py`` ``build_optimizer``:
one parameter group per parameter, with

* ``lr = BASE_LR * BACKBONE_MULTIPLIER`` for parameters of modules whose name contains
  ``"backbone"``;
* ``weight_decay = 0`` for Swin's ``relative_position_bias_table`` and ``absolute_pos_embed``;
* ``weight_decay = WEIGHT_DECAY_NORM`` for normalization layers;
* ``weight_decay = WEIGHT_DECAY_EMBED`` for ``nn.Embedding`` (e.g. the query embeddings);
* ``WEIGHT_DECAY`` otherwise; parameters shared between modules appear once.

``build_lr_scheduler`` builds ``SOLVER.LR_SCHEDULER_NAME`` ("WarmupPolyLR" as the DeepLab project
of Detectron2, "WarmupMultiStepLR" and "WarmupCosineLR" as Detectron2's ``build_lr_scheduler``).

Gradient clipping (``SOLVER.CLIP_GRADIENTS``) wraps the optimizer class's ``step``:
``"full_model"`` clips the norm over all parameters together (as the originals), ``"value"`` /
``"norm"`` clip each parameter on its own (as Detectron2's ``maybe_add_gradient_clipping``).
"""
from __future__ import annotations

import copy
import itertools
import logging
from typing import Any, Callable, Iterable

import torch
from torch import nn

from fvcore.common.param_scheduler import CosineParamScheduler, MultiStepParamScheduler

from segcore.layers import FrozenBatchNorm2d

from .lr_scheduler import LRMultiplier, WarmupParamScheduler, WarmupPolyLR

__all__ = [
    "LR_SCHEDULER_BUILDERS",
    "NORM_MODULE_TYPES",
    "OPTIMIZER_BUILDERS",
    "build_lr_scheduler",
    "build_optimizer",
    "get_mask_former_param_groups",
    "maybe_add_full_model_gradient_clipping",
    "maybe_add_gradient_clipping",
]

logger = logging.getLogger(__name__)

NORM_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,  # NaiveSyncBatchNorm subclasses it
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    FrozenBatchNorm2d,
)

# Parameter names (substrings) of Swin's position tables, never weight-decayed in the originals.
POSITION_EMBEDDING_PARAM_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def get_mask_former_param_groups(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    weight_decay_embed: float,
    backbone_multiplier: float,
) -> list[dict[str, Any]]:
    """One optimizer parameter group per trainable parameter, as the MaskFormer ``train_net.py``.

    Args:
        model: the model; parameters with ``requires_grad=False`` are left out.
        base_lr: learning rate of every parameter outside the backbone.
        weight_decay: default weight decay.
        weight_decay_norm: weight decay of normalization-layer parameters (``NORM_MODULE_TYPES``).
        weight_decay_embed: weight decay of ``nn.Embedding`` weights.
        backbone_multiplier: lr factor for parameters of modules whose name contains ``"backbone"``.

    Returns:
        list of ``{"params": [p], "lr": float, "weight_decay": float}``, in module order.
    """
    defaults = {"lr": base_lr, "weight_decay": weight_decay}
    params: list[dict[str, Any]] = []
    memo: set[torch.nn.Parameter] = set()
    for module_name, module in model.named_modules():
        for param_name, value in module.named_parameters(recurse=False):
            if not value.requires_grad or value in memo:
                continue
            memo.add(value)
            hyperparams = copy.copy(defaults)
            if "backbone" in module_name:
                hyperparams["lr"] = hyperparams["lr"] * backbone_multiplier
            if any(name in param_name for name in POSITION_EMBEDDING_PARAM_NAMES):
                hyperparams["weight_decay"] = 0.0
            if isinstance(module, NORM_MODULE_TYPES):
                hyperparams["weight_decay"] = weight_decay_norm
            if isinstance(module, nn.Embedding):
                hyperparams["weight_decay"] = weight_decay_embed
            params.append({"params": [value], **hyperparams})
    return params


# ------------------------------------------------------------------ gradient clipping
def _clip_grad_value(cfg) -> Callable[[Any], None]:
    def clip(p):
        torch.nn.utils.clip_grad_value_(p, cfg.CLIP_VALUE)

    return clip


def _clip_grad_norm(cfg) -> Callable[[Any], None]:
    def clip(p):
        torch.nn.utils.clip_grad_norm_(p, cfg.CLIP_VALUE, cfg.NORM_TYPE)

    return clip


# SOLVER.CLIP_GRADIENTS.CLIP_TYPE -> per-parameter clipper factory (Detectron2's types).
_PER_PARAMETER_CLIPPERS: dict[str, Callable[[Any], Callable[[Any], None]]] = {
    "value": _clip_grad_value,
    "norm": _clip_grad_norm,
}
FULL_MODEL_CLIP_TYPE = "full_model"


def _optimizer_class_with_step_hook(
    optimizer_type: type[torch.optim.Optimizer], name: str, before_step: Callable[[torch.optim.Optimizer], None]
) -> type[torch.optim.Optimizer]:
    """A subclass of ``optimizer_type`` whose ``step`` calls ``before_step(self)`` first."""

    def step(self, closure=None):
        before_step(self)
        return super(new_type, self).step(closure)

    new_type = type(optimizer_type.__name__ + name, (optimizer_type,), {"step": step})
    return new_type


def maybe_add_gradient_clipping(cfg, optimizer):
    """Add per-parameter clipping (``CLIP_TYPE`` "value" or "norm") to an optimizer (as Detectron2).

    Args:
        cfg: the full config (reads ``SOLVER.CLIP_GRADIENTS``).
        optimizer: an optimizer class, or an instance (whose class is then replaced).

    Returns:
        the class or instance, unchanged when clipping is disabled or ``CLIP_TYPE`` is
        ``"full_model"`` (see :func:`maybe_add_full_model_gradient_clipping`).

    Raises:
        ValueError: unknown ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE``.
    """
    clip_cfg = cfg.SOLVER.CLIP_GRADIENTS
    if not clip_cfg.ENABLED or clip_cfg.CLIP_TYPE == FULL_MODEL_CLIP_TYPE:
        return optimizer
    if clip_cfg.CLIP_TYPE not in _PER_PARAMETER_CLIPPERS:
        known = sorted([*_PER_PARAMETER_CLIPPERS, FULL_MODEL_CLIP_TYPE])
        raise ValueError(f"Unknown SOLVER.CLIP_GRADIENTS.CLIP_TYPE '{clip_cfg.CLIP_TYPE}'; expected one of {known}")
    clipper = _PER_PARAMETER_CLIPPERS[clip_cfg.CLIP_TYPE](copy.deepcopy(clip_cfg))

    def clip_each_parameter(opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            for p in group["params"]:
                clipper(p)

    is_instance = isinstance(optimizer, torch.optim.Optimizer)
    optimizer_type = type(optimizer) if is_instance else optimizer
    new_type = _optimizer_class_with_step_hook(optimizer_type, "WithGradientClip", clip_each_parameter)
    if is_instance:
        optimizer.__class__ = new_type
        return optimizer
    return new_type


def maybe_add_full_model_gradient_clipping(cfg, optimizer_type: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """Subclass ``optimizer_type`` so ``step`` first clips the gradient norm over all parameters.

    Enabled when ``SOLVER.CLIP_GRADIENTS.ENABLED``, ``CLIP_TYPE == "full_model"`` and
    ``CLIP_VALUE > 0`` (as the MaskFormer / Mask2Former ``train_net.py``); the norm is
    ``NORM_TYPE`` (2.0 in the originals) over the concatenation of all gradients.

    Returns:
        the subclass, or ``optimizer_type`` itself when not enabled.
    """
    clip_cfg = cfg.SOLVER.CLIP_GRADIENTS
    clip_value = float(clip_cfg.CLIP_VALUE)
    norm_type = float(clip_cfg.NORM_TYPE)
    if not (clip_cfg.ENABLED and clip_cfg.CLIP_TYPE == FULL_MODEL_CLIP_TYPE and clip_value > 0.0):
        return optimizer_type

    def clip_all_parameters(opt: torch.optim.Optimizer) -> None:
        all_params: Iterable[torch.Tensor] = itertools.chain(*[g["params"] for g in opt.param_groups])
        torch.nn.utils.clip_grad_norm_(all_params, clip_value, norm_type)

    return _optimizer_class_with_step_hook(optimizer_type, "FullModelGradientClipping", clip_all_parameters)


# ------------------------------------------------------------------ optimizers
def _build_sgd(cfg, optimizer_type, params):
    return optimizer_type(params, cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV)


def _build_adamw(cfg, optimizer_type, params):
    return optimizer_type(params, cfg.SOLVER.BASE_LR)


# SOLVER.OPTIMIZER -> (torch optimizer class, builder(cfg, class, param_groups)).
OPTIMIZER_BUILDERS: dict[str, tuple[type[torch.optim.Optimizer], Callable]] = {
    "SGD": (torch.optim.SGD, _build_sgd),
    "ADAMW": (torch.optim.AdamW, _build_adamw),
}


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """Build the optimizer named by ``SOLVER.OPTIMIZER`` ("SGD" or "ADAMW") for ``model``.

    Parameter groups: :func:`get_mask_former_param_groups` with ``SOLVER.BASE_LR``,
    ``WEIGHT_DECAY``, ``WEIGHT_DECAY_NORM``, ``WEIGHT_DECAY_EMBED``, ``BACKBONE_MULTIPLIER``.
    SGD uses ``SOLVER.MOMENTUM`` and ``SOLVER.NESTEROV``; AdamW torch's default betas and eps.
    Gradient clipping as ``SOLVER.CLIP_GRADIENTS`` says (see the module docstring).

    Raises:
        ValueError: unknown ``SOLVER.OPTIMIZER`` or ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE``, or a
            model without trainable parameters.
    """
    name = cfg.SOLVER.OPTIMIZER
    if name not in OPTIMIZER_BUILDERS:
        raise ValueError(f"Unknown SOLVER.OPTIMIZER '{name}'; expected one of {sorted(OPTIMIZER_BUILDERS)}")
    params = get_mask_former_param_groups(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        weight_decay_embed=cfg.SOLVER.WEIGHT_DECAY_EMBED,
        backbone_multiplier=cfg.SOLVER.BACKBONE_MULTIPLIER,
    )
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to optimize")
    optimizer_type, builder = OPTIMIZER_BUILDERS[name]
    optimizer_type = maybe_add_full_model_gradient_clipping(cfg, optimizer_type)
    optimizer = builder(cfg, optimizer_type, params)
    return maybe_add_gradient_clipping(cfg, optimizer)


# ------------------------------------------------------------------ LR schedulers
def _warmup_length(cfg) -> float:
    return min(cfg.SOLVER.WARMUP_ITERS / cfg.SOLVER.MAX_ITER, 1.0)


def _build_warmup_poly_lr(cfg, optimizer):
    return WarmupPolyLR(
        optimizer,
        cfg.SOLVER.MAX_ITER,
        warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
        warmup_iters=cfg.SOLVER.WARMUP_ITERS,
        warmup_method=cfg.SOLVER.WARMUP_METHOD,
        power=cfg.SOLVER.POLY_LR_POWER,
        constant_ending=cfg.SOLVER.POLY_LR_CONSTANT_ENDING,
    )


def _build_warmup_multi_step_lr(cfg, optimizer):
    steps = [x for x in cfg.SOLVER.STEPS if x <= cfg.SOLVER.MAX_ITER]
    if len(steps) != len(cfg.SOLVER.STEPS):
        logger.warning(
            f"SOLVER.STEPS {list(cfg.SOLVER.STEPS)} has values larger than SOLVER.MAX_ITER "
            f"({cfg.SOLVER.MAX_ITER}); they are ignored."
        )
    if list(steps) != sorted(steps):
        raise ValueError(f"SOLVER.STEPS must be increasing, got {list(cfg.SOLVER.STEPS)}")
    sched = MultiStepParamScheduler(
        values=[cfg.SOLVER.GAMMA**k for k in range(len(steps) + 1)],
        milestones=steps,
        num_updates=cfg.SOLVER.MAX_ITER,
    )
    return _with_warmup(cfg, optimizer, sched)


def _build_warmup_cosine_lr(cfg, optimizer):
    end_value = cfg.SOLVER.BASE_LR_END / cfg.SOLVER.BASE_LR
    if not 0.0 <= end_value <= 1.0:
        raise ValueError(
            f"SOLVER.BASE_LR_END ({cfg.SOLVER.BASE_LR_END}) must lie in [0, SOLVER.BASE_LR ({cfg.SOLVER.BASE_LR})]"
        )
    return _with_warmup(cfg, optimizer, CosineParamScheduler(1, end_value))


def _with_warmup(cfg, optimizer, sched):
    sched = WarmupParamScheduler(
        sched,
        cfg.SOLVER.WARMUP_FACTOR,
        _warmup_length(cfg),
        cfg.SOLVER.WARMUP_METHOD,
        cfg.SOLVER.RESCALE_INTERVAL,
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=cfg.SOLVER.MAX_ITER)


# SOLVER.LR_SCHEDULER_NAME -> builder(cfg, optimizer).
LR_SCHEDULER_BUILDERS: dict[str, Callable] = {
    "WarmupPolyLR": _build_warmup_poly_lr,
    "WarmupMultiStepLR": _build_warmup_multi_step_lr,
    "WarmupCosineLR": _build_warmup_cosine_lr,
}


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """Build the per-iteration lr scheduler named by ``SOLVER.LR_SCHEDULER_NAME``.

    Uses ``SOLVER.MAX_ITER``, ``WARMUP_FACTOR``, ``WARMUP_ITERS``, ``WARMUP_METHOD`` and:
    "WarmupPolyLR": ``POLY_LR_POWER``, ``POLY_LR_CONSTANT_ENDING``; "WarmupMultiStepLR":
    ``STEPS``, ``GAMMA``; "WarmupCosineLR": ``BASE_LR_END``. The result has
    ``state_dict()`` / ``load_state_dict()`` for resuming.

    Raises:
        ValueError: unknown scheduler name or invalid values (the message names the key).
    """
    name = cfg.SOLVER.LR_SCHEDULER_NAME
    if name not in LR_SCHEDULER_BUILDERS:
        raise ValueError(f"Unknown SOLVER.LR_SCHEDULER_NAME '{name}'; expected one of {sorted(LR_SCHEDULER_BUILDERS)}")
    if cfg.SOLVER.MAX_ITER <= 0:
        raise ValueError(f"SOLVER.MAX_ITER must be > 0, got {cfg.SOLVER.MAX_ITER}")
    return LR_SCHEDULER_BUILDERS[name](cfg, optimizer)
