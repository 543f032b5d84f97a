"""Optimizers (parameter groups, gradient clipping) and learning-rate schedulers."""
from .build import (
    LR_SCHEDULER_BUILDERS,
    NORM_MODULE_TYPES,
    build_lr_scheduler,
    build_optimizer,
    get_default_optimizer_params,
    get_optimizer_params,
    iter_trainable_parameters,
    maybe_add_full_model_gradient_clipping,
    maybe_add_gradient_clipping,
)
from .lr_scheduler import LRMultiplier, WarmupParamScheduler, WarmupPolyLR, get_warmup_factor_at_iter

__all__ = ["LRMultiplier", "LR_SCHEDULER_BUILDERS", "NORM_MODULE_TYPES", "WarmupParamScheduler", "WarmupPolyLR",
           "build_lr_scheduler", "build_optimizer", "get_default_optimizer_params", "get_optimizer_params",
           "get_warmup_factor_at_iter", "iter_trainable_parameters",
           "maybe_add_full_model_gradient_clipping", "maybe_add_gradient_clipping"]
