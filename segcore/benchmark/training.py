"""The time of a training step: :class:`~segcore.engine.SimpleTrainer` / ``AMPTrainer``
``run_step`` (forward, losses, backward, optimizer step of ``SOLVER.OPTIMIZER``) on one batch."""
from __future__ import annotations

import gc
import itertools
import statistics
from typing import List

import torch

from .inputs import synthetic_training_batch
from .memory import MemoryMeter
from .profiling import profile_call
from .settings import PRECISION_NAMES, BenchmarkSettings
from .timing import timed

__all__ = ["run_train"]


def run_train(cfg, settings: BenchmarkSettings) -> dict:
    """Seconds per training iteration (forward, backward, optimizer step) and peak memory.

    Args:
        cfg: the config (:func:`~.settings.benchmark_config` with ``train=True``).
        settings: the batch (random ``input_size`` images with random rectangles as instances, else
            the training loader of ``DATASETS.TRAIN``), precision (fp32: ``SimpleTrainer``, else
            ``AMPTrainer``), compile, warm-up and timed iterations, profile.

    Returns:
        ``{"this project": {"median_s_per_iter", "min_s_per_iter", "max_s_per_iter", "iters",
        "first_iter_s", "batch_size", "optimizer", "input", ["compile_s"], <memory>, ["profile"]}}``.
    """
    from segcore.engine import AMPTrainer, SimpleTrainer, compile_model
    from segcore.modeling import build_model
    from segcore.solver import build_optimizer
    from segcore.utils.events import EventStorage

    torch.manual_seed(settings.seed)
    model = build_model(cfg)
    model.train()
    optimizer = build_optimizer(cfg, model)
    if settings.compile:
        compile_model(model)
    if settings.input_size:
        height, width = settings.input_size
        batch = synthetic_training_batch(num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
                                         batch_size=settings.batch_size, height=height, width=width,
                                         seed=settings.seed)
        loader = itertools.repeat(batch)
        source = f"random {height}x{width} images with random rectangles"
    else:
        from segcore.data import build_dataset_mapper, build_detection_train_loader

        loader = build_detection_train_loader(cfg, mapper=build_dataset_mapper(cfg, True))
        source = f"batches of {', '.join(cfg.DATASETS.TRAIN)}"
    if settings.precision == "fp32":
        trainer = SimpleTrainer(model, loader, optimizer)
    else:
        trainer = AMPTrainer(model, loader, optimizer, precision=PRECISION_NAMES[settings.precision])
    device = torch.device(cfg.MODEL.DEVICE).type
    meter = MemoryMeter(device=device)
    seconds: List[float] = []
    with EventStorage(0) as storage:
        first, _ = timed(trainer.run_step, device)
        for i in range(settings.warmup - 1):
            storage.iter = trainer.iter = i + 1
            trainer.run_step()
        gc.collect()
        for i in range(settings.iters):
            storage.iter = trainer.iter = settings.warmup + i
            with meter.measure():
                elapsed, _ = timed(trainer.run_step, device)
            seconds.append(elapsed)
    entry = {"median_s_per_iter": statistics.median(seconds), "min_s_per_iter": min(seconds),
             "max_s_per_iter": max(seconds), "iters": len(seconds), "first_iter_s": first,
             "batch_size": settings.batch_size, "optimizer": cfg.SOLVER.OPTIMIZER, "input": source}
    if settings.compile:
        entry["compile_s"] = max(0.0, first - entry["median_s_per_iter"])
    entry.update(meter.as_dict())
    if settings.profile:
        with EventStorage(settings.warmup + settings.iters) as storage:
            trainer.iter = storage.iter
            entry["profile"] = profile_call(trainer.run_step, settings.profile_rows)
    return {"this project": entry}
