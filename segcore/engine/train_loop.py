"""The iteration-based training loop with hooks, as Detectron2's ``engine/train_loop.py``.

:class:`TrainerBase` runs ``before_train``, then for each iteration ``before_step`` /
``run_step`` / ``after_step``, then ``after_train``, calling the registered :class:`HookBase`
objects at each point and recording metrics in an :class:`~segcore.utils.events.EventStorage`.
:class:`SimpleTrainer` implements ``run_step`` for the common case (one batch, sum of the loss
dict, backward, optimizer step); :class:`AMPTrainer` adds automatic mixed precision.
"""
from __future__ import annotations

import logging
import re
import time
import warnings
import weakref
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from segcore.utils import comm
from segcore.utils.events import EventStorage, get_event_storage
from segcore.utils.precision import precision_dtype

__all__ = ["AMPTrainer", "HookBase", "SimpleTrainer", "TrainerBase"]

logger = logging.getLogger(__name__)


class HookBase:
    """Base class of hooks: callbacks at fixed points of :meth:`TrainerBase.train`.

    ``self.trainer`` (a weak proxy set by :meth:`TrainerBase.register_hooks`) gives access to
    the trainer's state (``iter``, ``max_iter``, ``storage``, model, optimizer, ...). Inside
    ``after_step`` the current iteration ``trainer.iter`` is already done.
    """

    trainer: "TrainerBase" = None  # type: ignore[assignment]

    def before_train(self) -> None:
        """Called once before the first iteration."""

    def after_train(self) -> None:
        """Called once after the last iteration (also when training fails)."""

    def before_step(self) -> None:
        """Called before each iteration."""

    def after_backward(self) -> None:
        """Called after the backward pass of each iteration (before the optimizer step)."""

    def after_step(self) -> None:
        """Called after each iteration."""

    def state_dict(self) -> dict:
        """State to checkpoint with the trainer (default: none)."""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class TrainerBase:
    """An iteration-based trainer with hooks.

    Attributes:
        iter: the current iteration.
        start_iter: the first iteration of this run (after resuming: saved iteration + 1).
        max_iter: training stops before this iteration.
        storage: the ``EventStorage`` open during :meth:`train`.
    """

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter: int = 0
        self.start_iter: int = 0
        self.max_iter: int = 0
        self.storage: EventStorage

    def register_hooks(self, hooks: Iterable[HookBase | None]) -> None:
        """Append hooks (``None`` entries are skipped); they run in registration order."""
        hooks = [h for h in hooks if h is not None]
        for h in hooks:
            if not isinstance(h, HookBase):
                raise TypeError(f"Hooks must be HookBase instances, got {type(h).__name__}")
            # A weak proxy avoids a reference cycle between the trainer and its hooks.
            h.trainer = weakref.proxy(self)
        self._hooks.extend(hooks)

    def train(self, start_iter: int, max_iter: int) -> None:
        """Run iterations ``start_iter .. max_iter - 1``.

        Raises:
            FloatingPointError: non-finite values (predictions, losses, weights to save); the
                message names the iteration (``iteration=N``), added when the error lacks it.
            whatever else a hook or :meth:`run_step` raises (logged first; ``after_train``
                still runs).
        """
        logger.info(f"Starting training from iteration {start_iter}")
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in range(start_iter, max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                # After the loop iter is max_iter - 1; make it max_iter so that after_train sees
                # the number of finished iterations (as Detectron2).
                self.iter += 1
            except FloatingPointError as e:
                # Non-finite values (predictions, losses, weights): say at which iteration.
                logger.exception("Exception during training:")
                if re.search(rf"\biteration={self.iter}\b", str(e)):
                    raise
                raise FloatingPointError(f"At iteration={self.iter}: {e}") from e
            except Exception:
                logger.exception("Exception during training:")
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        # Scalars put during this iteration are tagged with it.
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_backward(self) -> None:
        for h in self._hooks:
            h.after_backward()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """``{"iteration": iter, "hooks": {hook class qualname: state}}`` (hooks with state only)."""
        ret: dict[str, Any] = {"iteration": self.iter}
        hooks_state = {}
        for h in self._hooks:
            sd = h.state_dict()
            if sd:
                name = type(h).__qualname__
                if name in hooks_state:
                    # The hook states are keyed by class name; two instances cannot both be saved.
                    continue
                hooks_state[name] = sd
        if hooks_state:
            ret["hooks"] = hooks_state
        return ret

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore ``iter`` and the hooks' states (a state without a matching hook is warned about)."""
        self.iter = state_dict["iteration"]
        for key, value in state_dict.get("hooks", {}).items():
            for h in self._hooks:
                if type(h).__qualname__ == key:
                    h.load_state_dict(value)
                    break
            else:
                logger.warning(f"Cannot find the hook '{key}', its state_dict is ignored.")


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, (DistributedDataParallel, DataParallel)) else model


class SimpleTrainer(TrainerBase):
    """One optimization step per iteration: next batch -> ``model(batch)`` -> sum of losses ->
    ``zero_grad`` -> ``backward`` -> ``optimizer.step``.

    The model takes a batch from ``data_loader`` and returns, in training mode, a dict of scalar
    loss tensors (or one scalar tensor). Each iteration records ``total_loss``, every loss
    (averaged over processes) and ``data_time`` (max over processes, seconds) in the storage.

    A data loader with ``state_dict()`` / ``load_state_dict()`` (such as
    :class:`segcore.data.train_loader.TrainLoader`) is checkpointed with the trainer: its state after
    the last batch used, one per process (gathered every iteration when the loader says its
    state differs across processes), so that a resumed run continues the same stream.

    Raises (from :meth:`run_step`):
        FloatingPointError: a loss is NaN or infinite (the message gives the iteration, the
            non-finite terms and the loss dict); the optimizer step is not taken.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
    ):
        """
        Args:
            model: the model (in training mode).
            data_loader: an iterable of batches; iterated without end (an exhausted loader
                raises ``StopIteration`` from ``run_step``).
            optimizer: the optimizer.
            gather_metric_period: gather and record metrics every this many iterations.
            zero_grad_before_forward: zero the gradients before the forward pass instead of
                after it.
        """
        super().__init__()
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj = None
        # every process's loader state, when gathered (see _record_data_loader_state)
        self._data_loader_states: list | None = None
        self.optimizer = optimizer
        self.gather_metric_period = gather_metric_period
        self.zero_grad_before_forward = zero_grad_before_forward

    @property
    def _data_loader_iter(self):
        # Created on first use so that building a trainer does not start loader workers.
        if self._data_loader_iter_obj is None:
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def _forward_losses(self, data: Any) -> tuple[dict, torch.Tensor]:
        """Run the model on a batch: ``(loss dict, their sum)``; a bare tensor counts as "total_loss"."""
        loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            return {"total_loss": loss_dict}, loss_dict
        return loss_dict, sum(loss_dict.values())

    def _next_batch(self) -> tuple[Any, float]:
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        self._record_data_loader_state()
        return data, data_time

    def _loader_is_stateful(self) -> bool:
        loader = self.data_loader
        return callable(getattr(loader, "state_dict", None)) and callable(getattr(loader, "load_state_dict", None))

    def _record_data_loader_state(self) -> None:
        """With several processes and a loader whose position differs across them, gather every
        process's state now (all processes run this step), so that the checkpoint, written by
        the main process alone, holds them all."""
        if (
            comm.get_world_size() > 1
            and self._loader_is_stateful()
            and getattr(self.data_loader, "state_differs_across_ranks", True)
        ):
            self._data_loader_states = comm.all_gather(self.data_loader.state_dict())

    def _data_loader_state_dict(self) -> dict:
        """``{"world_size": W, "states": [state of rank 0, ...]}`` (one shared state when the
        processes' states cannot differ)."""
        if self._data_loader_states is not None:
            states = list(self._data_loader_states)
        else:
            states = [self.data_loader.state_dict()]
        return {"world_size": comm.get_world_size(), "states": states}

    def _load_data_loader_state_dict(self, saved: Mapping | None) -> None:
        if saved is None:
            logger.warning(
                "The checkpoint has no data-loader state (it was written by an older version): the "
                "training data stream starts again from its beginning."
            )
            return
        saved_world_size, states = saved["world_size"], saved["states"]
        world_size, rank = comm.get_world_size(), comm.get_rank()
        if saved_world_size == world_size:
            state = states[rank] if len(states) == world_size else states[0]
            self._data_loader_states = list(states) if len(states) == world_size else None
        else:
            # Another partition of the index stream: continue at the same number of elements
            # drawn over all processes (not the exact batches of an uninterrupted run).
            state = dict(states[0])
            state["position"] = int(state["position"]) * saved_world_size // world_size
            state["pending"] = []
            self._data_loader_states = None
            logger.warning(
                f"The checkpoint's data-loader state was saved with {saved_world_size} processes, this run "
                f"has {world_size}: the data stream continues at the same number of images but is not the "
                "one an uninterrupted run would have seen."
            )
        self.data_loader.load_state_dict(state)
        self._data_loader_iter_obj = None  # the next batch comes from the restored position

    def run_step(self) -> None:
        if not self.model.training:
            raise RuntimeError("SimpleTrainer: the model was switched to eval mode during training")
        data, data_time = self._next_batch()
        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        loss_dict, losses = self._forward_losses(data)
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        losses.backward()
        self.after_backward()
        self._maybe_write_metrics(loss_dict, data_time)
        self.optimizer.step()

    def _maybe_write_metrics(self, loss_dict: Mapping[str, torch.Tensor], data_time: float) -> None:
        if (self.iter + 1) % self.gather_metric_period == 0:
            self._write_metrics(loss_dict, data_time)
        else:
            _check_finite(loss_dict, self.iter)

    def _write_metrics(self, loss_dict: Mapping[str, torch.Tensor], data_time: float, prefix: str = "") -> None:
        SimpleTrainer.write_metrics(loss_dict, data_time, self.iter, prefix)

    @staticmethod
    def write_metrics(loss_dict: Mapping[str, torch.Tensor], data_time: float, cur_iter: int, prefix: str = "") -> None:
        """Record losses (mean over processes), ``total_loss`` and ``data_time`` (max).

        Args:
            loss_dict: scalar loss tensors.
            data_time: seconds spent waiting for the batch.
            cur_iter: the iteration, for error messages.
            prefix: prepended to ``total_loss``.

        Raises:
            FloatingPointError: a loss is not finite (on any process).
        """
        metrics_dict = {k: v.detach().cpu().item() for k, v in loss_dict.items()}
        metrics_dict["data_time"] = data_time
        _check_finite_values(metrics_dict, cur_iter)
        all_metrics_dict = comm.gather(metrics_dict)
        if comm.is_main_process():
            storage = get_event_storage()
            # data_time varies between processes: the slowest one is what matters.
            data_time = np.max([x.pop("data_time") for x in all_metrics_dict])
            storage.put_scalar("data_time", data_time)
            metrics_dict = {k: float(np.mean([x[k] for x in all_metrics_dict])) for k in all_metrics_dict[0].keys()}
            total_losses_reduced = sum(metrics_dict.values())
            if not np.isfinite(total_losses_reduced):
                raise FloatingPointError(
                    f"Loss became infinite or NaN at iteration={cur_iter}!\nloss_dict = {metrics_dict}"
                )
            storage.put_scalar(f"{prefix}total_loss", total_losses_reduced)
            if len(metrics_dict) > 1:
                storage.put_scalars(**metrics_dict)

    def state_dict(self) -> dict:
        """:meth:`TrainerBase.state_dict` + ``"optimizer"`` + ``"data_loader"`` (for a loader
        with a state: see the class docstring)."""
        ret = super().state_dict()
        ret["optimizer"] = self.optimizer.state_dict()
        if self._loader_is_stateful():
            ret["data_loader"] = self._data_loader_state_dict()
        return ret

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore the iteration, hooks, optimizer and, for a loader with a state, its position
        (a checkpoint without one is warned about)."""
        super().load_state_dict(state_dict)
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if self._loader_is_stateful():
            self._load_data_loader_state_dict(state_dict.get("data_loader"))


def _check_finite_values(metrics: Mapping[str, float], cur_iter: int) -> None:
    """Raise FloatingPointError naming the iteration and the non-finite loss terms (as
    Detectron2's ``_write_metrics``), before the optimizer step is taken."""
    losses = {k: v for k, v in metrics.items() if k != "data_time"}
    if not np.isfinite(sum(losses.values())):
        bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
        raise FloatingPointError(
            f"Loss became infinite or NaN at iteration={cur_iter}! Non-finite terms: "
            f"{bad or 'none (their sum overflows)'}; the optimizer step was not taken.\nloss_dict = {losses}"
        )


def _check_finite(loss_dict: Mapping[str, torch.Tensor], cur_iter: int) -> None:
    _check_finite_values({k: v.detach().cpu().item() for k, v in loss_dict.items()}, cur_iter)


def _model_device_type(model: nn.Module) -> str:
    for p in _unwrap(model).parameters():
        return p.device.type
    return "cpu"


class AMPTrainer(SimpleTrainer):
    """:class:`SimpleTrainer` with automatic mixed precision (``torch.autocast`` + ``GradScaler``).

    On CUDA: autocast to ``precision`` (float16 or bfloat16) and a ``GradScaler``. On CPU:
    bfloat16 autocast when ``precision=torch.bfloat16``; float16 is not supported there, so a
    warning is logged and training runs in float32. The grad scaler's state is checkpointed.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        grad_scaler: torch.amp.GradScaler | None = None,
        precision: torch.dtype | str = torch.float16,
        log_grad_scaler: bool = False,
    ):
        """
        Args:
            model, data_loader, optimizer, gather_metric_period, zero_grad_before_forward:
                as :class:`SimpleTrainer`.
            grad_scaler: a ``torch.amp.GradScaler`` (default: a new one where fp16 is used).
            precision: the autocast dtype: ``torch.float16`` or ``torch.bfloat16``, or its name
                ("float16" / "fp16", "bfloat16" / "bf16": ``SOLVER.AMP.PRECISION``).
            log_grad_scaler: record the scale as ``[metric]grad_scaler`` every iteration.

        Raises:
            ValueError: ``precision`` is neither float16 nor bfloat16.
        """
        if isinstance(precision, str):
            precision = precision_dtype(precision)
        if isinstance(model, DistributedDataParallel) and len(model.device_ids or []) > 1:
            raise ValueError("AMPTrainer does not support single-process multi-device training")
        if isinstance(model, DataParallel):
            raise ValueError("AMPTrainer does not support DataParallel")
        if precision not in (torch.float16, torch.bfloat16):
            raise ValueError(f"AMPTrainer precision must be torch.float16 or torch.bfloat16, got {precision}")
        super().__init__(model, data_loader, optimizer, gather_metric_period, zero_grad_before_forward)
        self.device_type = _model_device_type(model)
        self.precision = precision
        self.log_grad_scaler = log_grad_scaler
        if self.device_type == "cuda":
            self.autocast_enabled = True
            use_scaler = True
        elif self.device_type == "cpu" and precision == torch.bfloat16:
            self.autocast_enabled = True
            use_scaler = False  # bfloat16 has float32's range: no loss scaling needed
        else:
            warnings.warn(
                f"AMPTrainer: {precision} autocast is not supported on device '{self.device_type}'; "
                "training in float32 instead",
                RuntimeWarning,
                stacklevel=2,
            )
            logger.warning(f"AMP with {precision} is not supported on '{self.device_type}'; training in float32.")
            self.autocast_enabled = False
            use_scaler = False
        if grad_scaler is None:
            grad_scaler = torch.amp.GradScaler(self.device_type if use_scaler else "cpu", enabled=use_scaler)
        self.grad_scaler = grad_scaler

    def run_step(self) -> None:
        if not self.model.training:
            raise RuntimeError("AMPTrainer: the model was switched to eval mode during training")
        data, data_time = self._next_batch()
        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        with torch.autocast(device_type=self.device_type, dtype=self.precision, enabled=self.autocast_enabled):
            loss_dict, losses = self._forward_losses(data)
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        self.grad_scaler.scale(losses).backward()
        if self.log_grad_scaler and self.grad_scaler.is_enabled():
            get_event_storage().put_scalar("[metric]grad_scaler", self.grad_scaler.get_scale())
        self.after_backward()
        self._maybe_write_metrics(loss_dict, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def state_dict(self) -> dict:
        ret = super().state_dict()
        ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict: Mapping) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("grad_scaler"):
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
