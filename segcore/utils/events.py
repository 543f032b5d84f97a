"""Training-time metric storage and writers, as in Detectron2's ``utils/events.py``.

:class:`EventStorage` collects scalars (with their full history, for median / average
smoothing) and images during training; :func:`get_event_storage` returns the one in use.
Writers turn its content into output:

* :class:`CommonMetricPrinter`: one console line with iteration, ETA, losses, time, data_time,
  lr and max memory;
* :class:`JSONWriter`: ``metrics.json``, one JSON object per line (per written iteration);
* :class:`TensorboardXWriter`: TensorBoard event files (``torch.utils.tensorboard``).
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import torch
from fvcore.common.history_buffer import HistoryBuffer

from .file_io import PathManager

__all__ = [
    "CommonMetricPrinter",
    "EventStorage",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "get_event_storage",
]

_CURRENT_STORAGE_STACK: list["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """The :class:`EventStorage` of the innermost active ``with EventStorage(...)`` block.

    Raises:
        RuntimeError: called outside any ``with EventStorage(...)`` block.
    """
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError("get_event_storage() has to be called inside a 'with EventStorage(...)' context!")
    return _CURRENT_STORAGE_STACK[-1]


class EventWriter:
    """Base class of writers that read events from the current :class:`EventStorage`."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Append scalars to a JSON-lines file: one object per iteration, with an ``"iteration"`` key.

    Scalars put with ``smoothing_hint=True`` are written as their median over the last
    ``window_size`` values; others as their latest value. Each scalar is written once per
    iteration in which it was put (and after the last written iteration).
    """

    def __init__(self, json_file: str, window_size: int = 20):
        """
        Args:
            json_file: the output path (appended to if it exists, e.g. after resuming).
            window_size: median window (iterations) for smoothed scalars.
        """
        self._file_handle = PathManager.open(json_file, "a")
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        to_save: dict[int, dict[str, float]] = defaultdict(dict)
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr <= self._last_write:  # already written
                continue
            to_save[itr][k] = v
        if to_save:
            self._last_write = max(to_save.keys())
        for itr in sorted(to_save.keys()):
            scalars = to_save[itr]
            scalars["iteration"] = itr
            self._file_handle.write(json.dumps(scalars, sort_keys=True) + "\n")
        self._file_handle.flush()
        try:
            os.fsync(self._file_handle.fileno())
        except (AttributeError, OSError, ValueError):  # not a local file
            pass

    def close(self) -> None:
        self._file_handle.close()


class TensorboardXWriter(EventWriter):
    """Write all scalars (and images put with ``put_image``) to TensorBoard event files."""

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs: Any):
        """
        Args:
            log_dir: directory of the event files.
            window_size: median window (iterations) for smoothed scalars.
            kwargs: passed to ``torch.utils.tensorboard.SummaryWriter``.
        """
        from torch.utils.tensorboard import SummaryWriter

        self._window_size = window_size
        self._writer = SummaryWriter(log_dir, **kwargs)
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        new_last_write = self._last_write
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                self._writer.add_scalar(k, v, itr)
                new_last_write = max(new_last_write, itr)
        self._last_write = new_last_write
        # Images are kept by the storage until a writer consumes them (only one writer may).
        if storage._vis_data:
            for img_name, img, step_num in storage._vis_data:
                self._writer.add_image(img_name, img, step_num)
            storage.clear_images()
        self._writer.flush()

    def close(self) -> None:
        if hasattr(self, "_writer"):  # absent when __init__ failed
            self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Print the common metrics to the console (logger ``segcore.utils.events``).

    One line per call: ``eta: ...  iter: N  total_loss: ...  loss_x: ...  time: ...
    data_time: ...  lr: ...  max_mem: ...M``. Losses are median-smoothed over ``window_size``
    iterations; ``time`` is the global average, ``data_time`` the average of the last 20; the
    ETA uses the median iteration time. ``max_mem`` (MiB) is printed only with CUDA.
    """

    def __init__(self, max_iter: int | None = None, window_size: int = 20):
        """
        Args:
            max_iter: the number of training iterations, for the ETA (no ETA when ``None``).
            window_size: median window (iterations) for the losses.
        """
        self.logger = logging.getLogger(__name__)
        self._max_iter = max_iter
        self._window_size = window_size
        self._last_write: tuple[int, float] | None = None  # (iteration, time) of the last write

    def _get_eta(self, storage: "EventStorage") -> str | None:
        if self._max_iter is None:
            return ""
        iteration = storage.iter
        try:
            eta_seconds = storage.history("time").median(1000) * (self._max_iter - iteration - 1)
            storage.put_scalar("eta_seconds", eta_seconds, smoothing_hint=False)
            return str(datetime.timedelta(seconds=int(eta_seconds)))
        except KeyError:
            # No "time" recorded (e.g. during timer warmup): estimate from wall time between writes.
            eta_string = None
            if self._last_write is not None and iteration > self._last_write[0]:
                estimate_iter_time = (time.perf_counter() - self._last_write[1]) / (iteration - self._last_write[0])
                eta_seconds = estimate_iter_time * (self._max_iter - iteration - 1)
                eta_string = str(datetime.timedelta(seconds=int(eta_seconds)))
            self._last_write = (iteration, time.perf_counter())
            return eta_string

    def write(self) -> None:
        storage = get_event_storage()
        iteration = storage.iter
        if iteration == self._max_iter:
            # Training has finished; this writer reports progress only.
            return
        try:
            avg_data_time = storage.history("data_time").avg(self._window_size)
        except KeyError:  # not recorded yet
            avg_data_time = None
        try:
            avg_iter_time = storage.history("time").global_avg()
        except KeyError:
            avg_iter_time = None
        try:
            lr = "{:.5g}".format(storage.history("lr").latest())
        except KeyError:
            lr = "N/A"
        eta_string = self._get_eta(storage)
        if torch.cuda.is_available():
            max_mem_mb = torch.cuda.max_memory_allocated() / 1024.0 / 1024.0
        else:
            max_mem_mb = None
        losses = "  ".join(
            "{}: {:.4g}".format(k, v.median(self._window_size))
            for k, v in storage.histories().items()
            if "loss" in k
        )
        self.logger.info(
            " {eta}iter: {iter}  {losses}  {time}{data_time}lr: {lr}  {memory}".format(
                eta=f"eta: {eta_string}  " if eta_string else "",
                iter=iteration,
                losses=losses,
                time="time: {:.4f}  ".format(avg_iter_time) if avg_iter_time is not None else "",
                data_time="data_time: {:.4f}  ".format(avg_data_time) if avg_data_time is not None else "",
                lr=lr,
                memory="max_mem: {:.0f}M".format(max_mem_mb) if max_mem_mb is not None else "",
            )
        )


class EventStorage:
    """Metric storage for one training run; use as ``with EventStorage(start_iter) as storage:``.

    Scalars are kept as fvcore ``HistoryBuffer`` s (``median(n)``, ``avg(n)``, ``global_avg()``,
    ``latest()``, ``values()``) indexed by name, each value tagged with the iteration at which
    it was put (``storage.iter``, which the trainer advances).
    """

    def __init__(self, start_iter: int = 0):
        """
        Args:
            start_iter: the iteration number to start with.
        """
        self._history: dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest_scalars: dict[str, tuple[float, int]] = {}
        self._iter = start_iter
        self._current_prefix = ""
        self._vis_data: list[tuple[str, Any, int]] = []
        self._histograms: list[dict] = []

    def put_image(self, img_name: str, img_tensor) -> None:
        """Store an image for TensorBoard.

        Args:
            img_name: the image's tag.
            img_tensor: tensor or array (3, H, W), RGB, uint8 in [0, 255] or float in [0, 1].
        """
        self._vis_data.append((img_name, img_tensor, self._iter))

    def put_scalar(self, name: str, value, smoothing_hint: bool = True) -> None:
        """Add ``value`` (anything ``float()`` accepts) to the history of ``name`` at this iteration.

        Args:
            smoothing_hint: whether writers should smooth this scalar (median over a window).

        Raises:
            ValueError: ``name`` was put before with a different ``smoothing_hint``.
        """
        name = self._current_prefix + name
        history = self._history[name]
        value = float(value)
        history.update(value, self._iter)
        self._latest_scalars[name] = (value, self._iter)
        existing_hint = self._smoothing_hints.get(name)
        if existing_hint is None:
            self._smoothing_hints[name] = smoothing_hint
        elif existing_hint != smoothing_hint:
            raise ValueError(f"Scalar {name} was put with a different smoothing_hint!")

    def put_scalars(self, *, smoothing_hint: bool = True, **kwargs) -> None:
        """Put several scalars: ``storage.put_scalars(loss=l, accuracy=a)``."""
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint=smoothing_hint)

    def history(self, name: str) -> HistoryBuffer:
        """The history of scalar ``name``.

        Raises:
            KeyError: no scalar of that name was put.
        """
        ret = self._history.get(name, None)
        if ret is None:
            raise KeyError(f"No history metric available for {name}!")
        return ret

    def histories(self) -> dict[str, HistoryBuffer]:
        """All histories, by name."""
        return self._history

    def latest(self) -> dict[str, tuple[float, int]]:
        """name -> (latest value, iteration at which it was put)."""
        return self._latest_scalars

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """Like :meth:`latest`, but smoothed scalars give their median over ``window_size`` values."""
        result = {}
        for k, (v, itr) in self._latest_scalars.items():
            result[k] = (self._history[k].median(window_size) if self._smoothing_hints[k] else v, itr)
        return result

    def smoothing_hints(self) -> dict[str, bool]:
        """name -> the ``smoothing_hint`` it was put with."""
        return self._smoothing_hints

    def step(self) -> None:
        """Advance the iteration counter by one (alternatively, set :attr:`iter`)."""
        self._iter += 1

    @property
    def iter(self) -> int:
        """The current iteration; scalars put now are tagged with it."""
        return self._iter

    @iter.setter
    def iter(self, val: int) -> None:
        self._iter = int(val)

    @property
    def iteration(self) -> int:  # backward-compatible alias of ``iter``
        return self._iter

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self
        _CURRENT_STORAGE_STACK.pop()

    @contextmanager
    def name_scope(self, name: str):
        """Prefix every scalar put inside the block with ``name + "/"``."""
        old_prefix = self._current_prefix
        self._current_prefix = name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix

    def clear_images(self) -> None:
        """Drop stored images (called by the writer that consumed them)."""
        self._vis_data = []

    def clear_histograms(self) -> None:
        """Drop stored histograms."""
        self._histograms = []
