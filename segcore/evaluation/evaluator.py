"""The evaluator interface and the inference loop, as in Detectron2's ``evaluation/evaluator.py``."""
from __future__ import annotations

import datetime
import itertools
import logging
import time
from collections import OrderedDict, abc
from contextlib import ExitStack, contextmanager
from typing import Any, Iterable

import torch
from torch import nn
from tqdm import tqdm

from segcore.utils import comm
from segcore.utils.comm import get_world_size, is_main_process
from segcore.utils.logger import log_every_n_seconds
from segcore.utils.precision import inference_precision

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "gather_on_main_process", "inference_context",
           "inference_on_dataset"]

class DatasetEvaluator:
    """Base class of evaluators: accumulate (input, output) pairs, then compute metrics.

    :func:`inference_on_dataset` calls :meth:`reset`, :meth:`process` for every batch, and
    :meth:`evaluate` at the end.
    """

    def reset(self) -> None:
        """Prepare for a new round of evaluation (called before the first :meth:`process`)."""

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Accumulate one batch.

        Args:
            inputs: the model's inputs (a list of dataset dicts).
            outputs: the model's outputs for them, in the same order.
        """

    def evaluate(self) -> dict | None:
        """Compute the metrics over everything processed.

        Returns:
            dict ``{task: {metric: float}}`` on the main process (``None`` or ``{}`` elsewhere).
        """



def gather_on_main_process(items: list, distributed: bool):
    """The ``items`` of every process concatenated in rank order on the main process, None on the
    others (an evaluator's ``evaluate`` then returns None there); ``items`` itself when not
    ``distributed``."""
    if not distributed:
        return items
    comm.synchronize()
    gathered = list(itertools.chain(*comm.gather(items, dst=0)))
    return gathered if comm.is_main_process() else None


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators run together; their results are merged (keys must not collide)."""

    def __init__(self, evaluators: Iterable[DatasetEvaluator]):
        super().__init__()
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self) -> OrderedDict:
        """Merged results of all evaluators.

        Raises:
            ValueError: two evaluators returned the same task key.
        """
        results: OrderedDict = OrderedDict()
        for evaluator in self._evaluators:
            result = evaluator.evaluate()
            if is_main_process() and result is not None:
                for k, v in result.items():
                    if k in results:
                        raise ValueError(f"Different evaluators produce results with the same key {k!r}")
                    results[k] = v
        return results


@contextmanager
def inference_context(model: nn.Module):
    """Put ``model`` in eval mode for the block, then restore its previous training mode."""
    training_mode = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training_mode)


def _model_device_type(model: nn.Module | Any) -> str:
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            return tensor.device.type
    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_on_dataset(
    model: nn.Module | Any,
    data_loader: Iterable,
    evaluator: DatasetEvaluator | list[DatasetEvaluator] | None,
    *,
    precision: str | torch.dtype = "float32",
) -> dict:
    """Run ``model`` on every batch of ``data_loader`` and evaluate the outputs.

    The model runs in eval mode under ``torch.inference_mode()`` (its mode is restored
    afterwards), at ``precision`` (:func:`inference_precision`). A tqdm progress bar is shown on
    the main process; the total and per-image compute times are logged (the first few batches, a
    warmup, are not timed).

    Args:
        model: a callable taking a batch (list of dicts) and returning a list of output dicts;
            when an ``nn.Module``, it is switched to eval mode for the run.
        data_loader: iterable of batches; ``len()`` is used for progress when available.
        evaluator: an evaluator, a list of them, or ``None`` (only benchmark the model).
        precision: "float32" (default), "bfloat16" or "float16" (CUDA) autocast, e.g.
            ``cfg.TEST.PRECISION``.

    Returns:
        dict: ``evaluator.evaluate()`` (``{}`` when it returned ``None``).

    Raises:
        ValueError: an unknown precision, or float16 on the CPU.
    """
    num_devices = get_world_size()
    logger = logging.getLogger(__name__)
    try:
        total = len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    logger.info(f"Start inference on {total if total is not None else 'an unknown number of'} batches")

    if evaluator is None:
        evaluator = DatasetEvaluators([])
    if isinstance(evaluator, abc.MutableSequence):
        evaluator = DatasetEvaluators(evaluator)
    evaluator.reset()

    num_warmup = min(5, total - 1) if total else 5
    start_time = time.perf_counter()
    total_data_time = total_compute_time = total_eval_time = 0.0
    num_images = 0
    with ExitStack() as stack:
        if isinstance(model, nn.Module):
            stack.enter_context(inference_context(model))
        stack.enter_context(torch.inference_mode())
        stack.enter_context(inference_precision(precision, _model_device_type(model)))
        progress = tqdm(total=total, desc="inference", disable=not is_main_process(), leave=False)
        stack.callback(progress.close)

        start_data_time = time.perf_counter()
        for idx, inputs in enumerate(data_loader):
            total_data_time += time.perf_counter() - start_data_time
            if idx == num_warmup:
                start_time = time.perf_counter()
                total_data_time = total_compute_time = total_eval_time = 0.0
                num_images = 0

            start_compute_time = time.perf_counter()
            outputs = model(inputs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            total_compute_time += time.perf_counter() - start_compute_time

            start_eval_time = time.perf_counter()
            evaluator.process(inputs, outputs)
            total_eval_time += time.perf_counter() - start_eval_time

            num_images += len(inputs) if hasattr(inputs, "__len__") else 1
            progress.update(1)
            iters_after_start = idx + 1 - num_warmup * int(idx >= num_warmup)
            data_seconds_per_iter = total_data_time / iters_after_start
            compute_seconds_per_iter = total_compute_time / iters_after_start
            eval_seconds_per_iter = total_eval_time / iters_after_start
            total_seconds_per_iter = (time.perf_counter() - start_time) / iters_after_start
            if (total and idx >= num_warmup * 2) or compute_seconds_per_iter > 5:
                remaining = (total - idx - 1) if total else 0
                eta = datetime.timedelta(seconds=int(total_seconds_per_iter * remaining))
                log_every_n_seconds(
                    logging.INFO,
                    f"Inference done {idx + 1}/{total}. Dataloading: {data_seconds_per_iter:.4f} s/iter. "
                    f"Inference: {compute_seconds_per_iter:.4f} s/iter. Eval: {eval_seconds_per_iter:.4f} s/iter. "
                    f"Total: {total_seconds_per_iter:.4f} s/iter. ETA={eta}",
                    n=5,
                    name=__name__,
                )
            start_data_time = time.perf_counter()

    total_time = time.perf_counter() - start_time
    total_time_str = str(datetime.timedelta(seconds=int(total_time)))
    timed = max(num_images, 1)
    logger.info(
        f"Total inference time: {total_time_str} ({total_time / timed:.6f} s / img per device, "
        f"on {num_devices} devices)"
    )
    total_compute_time_str = str(datetime.timedelta(seconds=int(total_compute_time)))
    logger.info(
        f"Total inference pure compute time: {total_compute_time_str} ({total_compute_time / timed:.6f} s / img "
        f"per device, on {num_devices} devices)"
    )

    results = evaluator.evaluate()
    # An evaluator may return None when not in the main process; keep the return type a dict.
    if results is None:
        results = {}
    return results
