"""Iteration-based learning-rate schedules with warmup.

* :class:`WarmupPolyLR`: the poly schedule of DeepLab used by MaskFormer / Mask2Former / SeMask
  (Detectron2's ``projects/DeepLab/deeplab/lr_scheduler.py``), with an optional constant ending.
* :class:`LRMultiplier` + :class:`WarmupParamScheduler`: Detectron2's scheduler that multiplies
  every group's initial lr by an fvcore ``ParamScheduler`` (used for multi-step and cosine).

"Epoch" in torch's scheduler API (``last_epoch``) means *iteration* here: the trainer calls
``scheduler.step()`` once per iteration, after ``optimizer.step()``.
"""
from __future__ import annotations

import math

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["LRMultiplier", "WarmupParamScheduler", "WarmupPolyLR", "get_warmup_factor_at_iter"]

_WARMUP_METHODS = ("constant", "linear")


def get_warmup_factor_at_iter(method: str, iter: int, warmup_iters: int, warmup_factor: float) -> float:
    """The lr multiplier at iteration ``iter`` during warmup (1.0 from ``warmup_iters`` on).

    "constant": ``warmup_factor``; "linear": from ``warmup_factor`` at iteration 0 to 1 at
    ``warmup_iters`` (Goyal et al., "Accurate, Large Minibatch SGD", sec. 2.2).

    Raises:
        ValueError: unknown ``method``.
    """
    if method not in _WARMUP_METHODS:
        raise ValueError(f"Unknown warmup method '{method}'; expected one of {list(_WARMUP_METHODS)}")
    if iter >= warmup_iters:
        return 1.0
    if method == "constant":
        return warmup_factor
    alpha = iter / warmup_iters
    return warmup_factor * (1 - alpha) + alpha


class WarmupPolyLR(LRScheduler):
    """``lr(i) = base_lr * warmup(i) * (1 - i / max_iters) ** power`` (DeepLab's poly schedule).

    With ``constant_ending > 0``, once warmup is over and the poly factor falls below
    ``constant_ending``, the lr stays at ``base_lr * constant_ending`` (as Detectron2's DeepLab
    project, which MaskFormer uses).

    Args:
        optimizer: the optimizer; each group's ``initial_lr`` is its base lr.
        max_iters: training length in iterations.
        warmup_factor, warmup_iters, warmup_method: see :func:`get_warmup_factor_at_iter`.
        last_epoch: the last iteration done (-1 to start).
        power: the poly exponent (``SOLVER.POLY_LR_POWER``).
        constant_ending: the floor factor (``SOLVER.POLY_LR_CONSTANT_ENDING``), 0 for none.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_iters: int,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_epoch: int = -1,
        power: float = 0.9,
        constant_ending: float = 0.0,
    ):
        if max_iters <= 0:
            raise ValueError(f"WarmupPolyLR needs max_iters > 0, got {max_iters}")
        if warmup_method not in _WARMUP_METHODS:
            raise ValueError(f"Unknown warmup method '{warmup_method}'; expected one of {list(_WARMUP_METHODS)}")
        self.max_iters = max_iters
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        self.power = power
        self.constant_ending = constant_ending
        super().__init__(optimizer, last_epoch)

    def _poly_factor(self) -> float:
        # Past max_iters (e.g. one extra step at the very end), stay at 0 instead of a complex power.
        return math.pow(max(0.0, 1.0 - self.last_epoch / self.max_iters), self.power)

    def get_lr(self) -> list[float]:
        warmup_factor = get_warmup_factor_at_iter(
            self.warmup_method, self.last_epoch, self.warmup_iters, self.warmup_factor
        )
        poly = self._poly_factor()
        if self.constant_ending > 0 and warmup_factor == 1.0 and poly < self.constant_ending:
            return [base_lr * self.constant_ending for base_lr in self.base_lrs]
        return [base_lr * warmup_factor * poly for base_lr in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def state_dict(self) -> dict:
        """The progress only (``base_lrs``, ``last_epoch``, ``_last_lr``): the schedule's shape
        (``max_iters``, warmup, power, ...) comes from the config, so a run resumed with, e.g.,
        a longer ``SOLVER.MAX_ITER`` follows the new schedule."""
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch, "_last_lr": list(self._last_lr)}


class WarmupParamScheduler(CompositeParamScheduler):
    """An fvcore ``ParamScheduler`` preceded by a warmup stage (as Detectron2's).

    Args:
        scheduler: the main schedule, as a function of training progress in [0, 1].
        warmup_factor: the warmup's start value, relative to ``scheduler(0)``.
        warmup_length: warmup length as a fraction of training (e.g. 1000 / 160000).
        warmup_method: "linear" (to ``scheduler(warmup_length)``) or "constant".
        rescale_interval: run ``scheduler`` on the post-warmup interval rescaled to [0, 1]
            (``SOLVER.RESCALE_INTERVAL``) instead of on the absolute progress.

    Raises:
        ValueError: unknown ``warmup_method``.
    """

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
        rescale_interval: bool = False,
    ):
        end_value = scheduler(warmup_length)  # the value reached when warmup ends
        start_value = warmup_factor * scheduler(0.0)
        if warmup_method == "constant":
            warmup: ParamScheduler = ConstantParamScheduler(start_value)
        elif warmup_method == "linear":
            warmup = LinearParamScheduler(start_value, end_value)
        else:
            raise ValueError(f"Unknown warmup method '{warmup_method}'; expected one of {list(_WARMUP_METHODS)}")
        super().__init__(
            [warmup, scheduler],
            interval_scaling=["rescaled", "rescaled" if rescale_interval else "fixed"],
            lengths=[warmup_length, 1 - warmup_length],
        )


class LRMultiplier(LRScheduler):
    """Every step, each group's lr becomes its initial lr times ``multiplier(iter / max_iter)``.

    As Detectron2's ``LRMultiplier``: one fvcore ``ParamScheduler`` defines the relative lr,
    so groups keep their ratios (e.g. the backbone multiplier). The state dict holds only
    ``base_lrs`` and ``last_epoch`` (fvcore schedulers are stateless).

    Args:
        optimizer: the optimizer.
        multiplier: an fvcore ``ParamScheduler`` over training progress in [0, 1].
        max_iter: training length in iterations.
        last_iter: the last iteration done (-1 to start).

    Raises:
        TypeError: ``multiplier`` is not a ``ParamScheduler``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier: ParamScheduler, max_iter: int, last_iter: int = -1):
        if not isinstance(multiplier, ParamScheduler):
            raise TypeError(f"LRMultiplier(multiplier=) must be an fvcore ParamScheduler, got {type(multiplier).__name__}")
        if max_iter <= 0:
            raise ValueError(f"LRMultiplier needs max_iter > 0, got {max_iter}")
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self) -> dict:
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def get_lr(self) -> list[float]:
        progress = min(self.last_epoch / self._max_iter, 1.0)  # fvcore schedulers accept [0, 1]
        multiplier = self._multiplier(progress)
        return [base_lr * multiplier for base_lr in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()
