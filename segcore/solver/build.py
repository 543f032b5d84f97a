"""Optimizer construction: per-parameter groups and gradient clipping.

``build_optimizer`` builds ``SOLVER.OPTIMIZER`` ("SGD" or "ADAMW") over the model's parameter
groups. The groups are the model's own when it defines them (a method
``optimizer_param_groups(cfg) -> list[dict]``: MaskFormer's backbone lr multiplier and
embedding / position-table weight decay live in the model family that reads those keys), and
otherwise Detectron2's default (:func:`get_default_optimizer_params`):

* ``lr = BASE_LR``, ``weight_decay = WEIGHT_DECAY``;
* ``weight_decay = WEIGHT_DECAY_NORM`` for normalization layers (:data:`NORM_MODULE_TYPES`);
* ``lr = BASE_LR * BIAS_LR_FACTOR`` and ``weight_decay = WEIGHT_DECAY_BIAS`` (when set) for biases;
* parameters shared between modules appear once, frozen ones not at all.

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
from typing import Any, Callable, Iterable, Iterator, Optional

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
    "get_default_optimizer_params",
    "get_optimizer_params",
    "iter_trainable_parameters",
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


def iter_trainable_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, nn.Parameter]]:
    """``(module_name, module, param_name, param)`` for every trainable parameter, each once.

    Parameters with ``requires_grad=False`` are skipped; a parameter shared between modules is
    given with the first module that holds it (``model.named_modules()`` order). The building
    block of every parameter-group policy.
    """
    memo: set[torch.nn.Parameter] = set()
    for module_name, module in model.named_modules():
        for param_name, value in module.named_parameters(recurse=False):
            if not value.requires_grad or value in memo:
                continue
            memo.add(value)
            yield module_name, module, param_name, value


def get_default_optimizer_params(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
) -> list[dict[str, Any]]:
    """One optimizer parameter group per trainable parameter (Detectron2's default policy).

    Args:
        model: the model; frozen parameters are left out, shared ones appear once.
        base_lr: learning rate.
        weight_decay: default weight decay.
        weight_decay_norm: weight decay of normalization-layer parameters (:data:`NORM_MODULE_TYPES`).
        bias_lr_factor: lr factor of parameters named ``bias``.
        weight_decay_bias: weight decay of biases (None: as any other parameter of its module).

    Returns:
        list of ``{"params": [p], "lr": float, "weight_decay": float}``, in module order.
    """
    params: list[dict[str, Any]] = []
    for _, module, param_name, value in iter_trainable_parameters(model):
        group = {"params": [value], "lr": base_lr, "weight_decay": weight_decay}
        if isinstance(module, NORM_MODULE_TYPES):
            group["weight_decay"] = weight_decay_norm
        if param_name == "bias":
            group["lr"] = base_lr * bias_lr_factor
            if weight_decay_bias is not None:
                group["weight_decay"] = weight_decay_bias
        params.append(group)
    return params


def get_optimizer_params(cfg, model: nn.Module) -> list[dict[str, Any]]:
    """The parameter groups :func:`build_optimizer` uses for ``model``.

    ``model.optimizer_param_groups(cfg)`` when the model (unwrapped from
    ``DistributedDataParallel``) defines it; otherwise :func:`get_default_optimizer_params` with
    ``SOLVER.BASE_LR``, ``WEIGHT_DECAY``, ``WEIGHT_DECAY_NORM``, ``BIAS_LR_FACTOR`` and
    ``WEIGHT_DECAY_BIAS``.
    """
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    hook = getattr(model, "optimizer_param_groups", None)
    if callable(hook):
        return hook(cfg)
    return get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )


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

    Parameter groups: :func:`get_optimizer_params` (the model's own policy, or Detectron2's).
    SGD uses ``SOLVER.MOMENTUM`` and ``SOLVER.NESTEROV``; AdamW torch's default betas and eps.
    Gradient clipping as ``SOLVER.CLIP_GRADIENTS`` says (see the module docstring).

    Raises:
        ValueError: unknown ``SOLVER.OPTIMIZER`` or ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE``, or a
            model without trainable parameters.
    """
    name = cfg.SOLVER.OPTIMIZER
    if name not in OPTIMIZER_BUILDERS:
        raise ValueError(f"Unknown SOLVER.OPTIMIZER '{name}'; expected one of {sorted(OPTIMIZER_BUILDERS)}")
    params = get_optimizer_params(cfg, model)
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
