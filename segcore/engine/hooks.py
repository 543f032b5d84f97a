"""Training hooks, as Detectron2's ``engine/hooks.py``.

* :class:`IterationTimer`: per-iteration time (``time`` scalar) and the total at the end;
* :class:`LRScheduler`: steps the lr scheduler after each iteration and records ``lr``;
* :class:`PeriodicCheckpointer`: saves ``model_<iter>.pth`` every period and ``model_final.pth``;
* :class:`EvalHook`: runs an evaluation function every period and after the last iteration;
* :class:`PeriodicWriter`: runs event writers (console, ``metrics.json``, TensorBoard) every period;
* :class:`PreciseBN`: recomputes BatchNorm statistics before evaluations (``TEST.PRECISE_BN``);
* :class:`CallbackHook`: a hook from plain functions.
"""
from __future__ import annotations

import datetime
import logging
import math
import time
from collections import Counter
from typing import Callable, Iterable

import torch
from fvcore.common.checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from fvcore.common.param_scheduler import ParamScheduler
from fvcore.common.timer import Timer

from segcore.evaluation.testing import flatten_results_dict
from segcore.solver import LRMultiplier
from segcore.utils import comm
from segcore.utils.events import EventWriter

from .train_loop import HookBase

__all__ = ["CallbackHook", "EvalHook", "IterationTimer", "LRScheduler", "PeriodicCheckpointer", "PeriodicWriter",
           "PreciseBN"]


class CallbackHook(HookBase):
    """A hook whose methods call the given functions with the trainer as argument."""

    def __init__(self, *, before_train=None, after_train=None, before_step=None, after_step=None):
        self._before_train = before_train
        self._before_step = before_step
        self._after_step = after_step
        self._after_train = after_train

    def before_train(self) -> None:
        if self._before_train:
            self._before_train(self.trainer)

    def after_train(self) -> None:
        if self._after_train:
            self._after_train(self.trainer)
        # The functions may hold a reference to the trainer; drop them to avoid a cycle.
        del self._before_train, self._after_train
        del self._before_step, self._after_step

    def before_step(self) -> None:
        if self._before_step:
            self._before_step(self.trainer)

    def after_step(self) -> None:
        if self._after_step:
            self._after_step(self.trainer)


class IterationTimer(HookBase):
    """Record the duration of each iteration (``time``, seconds, hooks excluded) and log totals.

    Put it first in the hook list so that it measures the other hooks' ``before_step`` too.
    The first ``warmup_iter`` iterations are not recorded (they are slow).
    """

    def __init__(self, warmup_iter: int = 3):
        self._warmup_iter = warmup_iter
        self._step_timer = Timer()
        self._start_time = time.perf_counter()
        self._total_timer = Timer()

    def before_train(self) -> None:
        self._start_time = time.perf_counter()
        self._total_timer.reset()
        self._total_timer.pause()

    def after_train(self) -> None:
        logger = logging.getLogger(__name__)
        total_time = time.perf_counter() - self._start_time
        total_time_minus_hooks = self._total_timer.seconds()
        hook_time = total_time - total_time_minus_hooks
        num_iter = self.trainer.storage.iter + 1 - self.trainer.start_iter - self._warmup_iter
        if num_iter > 0 and total_time_minus_hooks > 0:
            logger.info(
                "Overall training speed: {} iterations in {} ({:.4f} s / it)".format(
                    num_iter,
                    str(datetime.timedelta(seconds=int(total_time_minus_hooks))),
                    total_time_minus_hooks / num_iter,
                )
            )
        logger.info(
            "Total training time: {} ({} on hooks)".format(
                str(datetime.timedelta(seconds=int(total_time))),
                str(datetime.timedelta(seconds=int(hook_time))),
            )
        )

    def before_step(self) -> None:
        self._step_timer.reset()
        self._total_timer.resume()

    def after_step(self) -> None:
        iter_done = self.trainer.storage.iter - self.trainer.start_iter + 1
        if iter_done >= self._warmup_iter:
            self.trainer.storage.put_scalars(time=self._step_timer.seconds())
        else:
            self._start_time = time.perf_counter()
            self._total_timer.reset()
        self._total_timer.pause()


class PeriodicWriter(HookBase):
    """Call every writer's ``write()`` every ``period`` iterations, after the last one, and at
    the end of training (then ``close()``)."""

    def __init__(self, writers: Iterable[EventWriter], period: int = 20):
        """
        Args:
            writers: event writers.
            period: iterations between writes.
        """
        self._writers = list(writers)
        for w in self._writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"PeriodicWriter needs EventWriter instances, got {type(w).__name__}")
        self._period = period

    def after_step(self) -> None:
        if (self.trainer.iter + 1) % self._period == 0 or self.trainer.iter == self.trainer.max_iter - 1:
            for writer in self._writers:
                writer.write()

    def after_train(self) -> None:
        for writer in self._writers:
            # Write once more: evaluation results of the last iteration arrive in after_train.
            writer.write()
            writer.close()


class PeriodicCheckpointer(_PeriodicCheckpointer, HookBase):
    """fvcore's ``PeriodicCheckpointer`` as a hook: after iteration ``i``, saves
    ``model_{i:07d}.pth`` when ``(i + 1) % period == 0`` and ``model_final.pth`` after the last
    iteration, each with ``iteration=i`` (see fvcore for ``max_to_keep`` and ``file_prefix``).
    """

    def before_train(self) -> None:
        self.max_iter = self.trainer.max_iter

    def after_step(self) -> None:
        self.step(self.trainer.iter)


class LRScheduler(HookBase):
    """Step the lr scheduler after every iteration and record the lr (scalar ``lr``).

    The recorded lr is that of a representative parameter group: the largest group, or with
    one parameter per group, a group with the most common lr (i.e. not the backbone's).
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None = None, scheduler=None):
        """
        Args:
            optimizer: default: the trainer's ``optimizer``.
            scheduler: a torch ``LRScheduler`` or an fvcore ``ParamScheduler`` (wrapped in
                :class:`~segcore.solver.LRMultiplier`); default: the trainer's ``scheduler``.
        """
        self._optimizer = optimizer
        self._scheduler = scheduler

    def before_train(self) -> None:
        self._optimizer = self._optimizer or self.trainer.optimizer
        if isinstance(self.scheduler, ParamScheduler):
            self._scheduler = LRMultiplier(self._optimizer, self.scheduler, self.trainer.max_iter, last_iter=self.trainer.iter - 1)
        self._best_param_group_id = LRScheduler.get_best_param_group_id(self._optimizer)

    @staticmethod
    def get_best_param_group_id(optimizer: torch.optim.Optimizer) -> int:
        """Index of the parameter group whose lr is logged (see the class docstring)."""
        largest_group = max(len(g["params"]) for g in optimizer.param_groups)
        if largest_group == 1:
            lr_count = Counter(g["lr"] for g in optimizer.param_groups)
            lr = lr_count.most_common()[0][0]
            for i, g in enumerate(optimizer.param_groups):
                if g["lr"] == lr:
                    return i
        for i, g in enumerate(optimizer.param_groups):
            if len(g["params"]) == largest_group:
                return i
        return 0

    def after_step(self) -> None:
        lr = self._optimizer.param_groups[self._best_param_group_id]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self.scheduler.step()

    @property
    def scheduler(self):
        return self._scheduler or self.trainer.scheduler

    def state_dict(self) -> dict:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LRScheduler):
            return self.scheduler.state_dict()
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LRScheduler):
            logging.getLogger(__name__).info("Loading scheduler from state_dict ...")
            self.scheduler.load_state_dict(state_dict)


class EvalHook(HookBase):
    """Run ``eval_function()`` every ``eval_period`` iterations and after the last iteration.

    Its results (a nested dict of numbers, e.g. ``{"sem_seg": {"mIoU": 40.1}}``) are recorded
    flattened (``sem_seg/mIoU``) in the event storage, so the writers output them; NaN values
    (e.g. the IoU of a class absent from the ground truth) are not recorded, which keeps
    ``metrics.json`` valid JSON.
    """

    def __init__(self, eval_period: int, eval_function: Callable[[], dict | None], eval_after_train: bool = True):
        """
        Args:
            eval_period: iterations between evaluations; 0 evaluates only after training.
            eval_function: called without arguments; returns a nested dict of numbers (or
                ``None`` / ``{}`` on non-main processes).
            eval_after_train: also evaluate after the last iteration.
        """
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train

    def _do_eval(self) -> None:
        results = self._func()
        if results:
            if not isinstance(results, dict):
                raise TypeError(f"EvalHook: eval_function must return a dict, got {type(results).__name__}: {results!r}")
            flattened_results = flatten_results_dict(results)
            for k, v in flattened_results.items():
                try:
                    flattened_results[k] = float(v)
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        f"EvalHook: eval_function should return a nested dict of float. Got '{k}: {v}' instead."
                    ) from e
            finite = {k: v for k, v in flattened_results.items() if not math.isnan(v)}
            self.trainer.storage.put_scalars(**finite, smoothing_hint=False)
        # Evaluation may take different time on different processes.
        comm.synchronize()

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if self._period > 0 and next_iter % self._period == 0:
            # The evaluation after the last iteration is done in after_train.
            if next_iter != self.trainer.max_iter:
                self._do_eval()

    def after_train(self) -> None:
        # Only when training finished (not after an exception).
        if self._eval_after_train and self.trainer.iter + 1 >= self.trainer.max_iter:
            self._do_eval()
        # The function may hold a reference to the trainer.
        del self._func


class PreciseBN(HookBase):
    """Recompute the running statistics of BatchNorm layers on ``num_iter`` training batches,
    every ``period`` iterations and after training (Wu & Johnson, "Rethinking 'Batch' in
    BatchNorm", sec. 3; as Detectron2's ``PreciseBN`` with fvcore's ``update_bn_stats``).

    Put it before :class:`EvalHook` (so evaluation sees the new statistics) and before the
    checkpointer. Does nothing for a model without BatchNorm layers in training mode.
    """

    def __init__(self, period: int, model: torch.nn.Module, data_loader: Iterable, num_iter: int):
        """
        Args:
            period: iterations between updates; 0 only after training.
            model: the model (BatchNorm layers in training mode are updated).
            data_loader: batches for the statistics (a separate loader, not the training one).
            num_iter: number of batches.
        """
        from fvcore.nn.precise_bn import get_bn_modules

        self._logger = logging.getLogger(__name__)
        if len(get_bn_modules(model)) == 0:
            self._logger.info("PreciseBN is disabled because model does not contain BN layers in training mode.")
            self._disabled = True
            return
        self._model = model
        self._data_loader = data_loader
        self._num_iter = num_iter
        self._period = period
        self._disabled = False
        self._data_iter = None

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        is_final = next_iter == self.trainer.max_iter
        if is_final or (self._period > 0 and next_iter % self._period == 0):
            self.update_stats()

    def state_dict(self) -> dict:
        """``{"data_loader": state}`` when its loader has a state (see
        :class:`segcore.data.train_loader.TrainLoader`), so a resumed run continues its batches; this
        is the main process's state (with aspect-ratio grouping, other processes' positions
        may differ and are then not exactly restored)."""
        if self._disabled or not callable(getattr(self._data_loader, "state_dict", None)):
            return {}
        return {"data_loader": self._data_loader.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the loader from a saved :meth:`state_dict` at the next update."""
        if self._disabled or "data_loader" not in state_dict:
            return
        if callable(getattr(self._data_loader, "load_state_dict", None)):
            self._data_loader.load_state_dict(state_dict["data_loader"])
            self._data_iter = None  # the next update draws from the restored position

    def update_stats(self) -> None:
        """Run the update now (on every process)."""
        from fvcore.nn.precise_bn import update_bn_stats

        if self._disabled:
            return
        if self._data_iter is None:
            self._data_iter = iter(self._data_loader)

        def data_loader():
            for num_iter in range(1, self._num_iter + 1):
                if num_iter % 100 == 0:
                    self._logger.info(f"Running precise-BN ... {num_iter}/{self._num_iter} iterations.")
                yield next(self._data_iter)

        with torch.no_grad():
            self._logger.info(
                f"Running precise-BN for {self._num_iter} iterations...  Note that this could produce "
                "different statistics every time."
            )
            update_bn_stats(self._model, data_loader(), self._num_iter)
