"""The speed of the training data loader: mapper, augmentation and batching of ``DATASETS.TRAIN``."""
from __future__ import annotations

import statistics
import time

from .settings import BenchmarkSettings

__all__ = ["run_data"]


def run_data(cfg, settings: BenchmarkSettings) -> dict:
    """Seconds per batch of the training data loader (mapper, augmentation, batching).

    Args:
        cfg: the config (its ``DATASETS.TRAIN``, ``SOLVER.IMS_PER_BATCH``, ``DATALOADER.NUM_WORKERS``).
        settings: ``dataset`` (replaces ``DATASETS.TRAIN``), warm-up and timed batches.

    Returns:
        ``{"this project": {"median_s_per_batch", "min_s_per_batch", "max_s_per_batch",
        "images_per_s", "batch_size", "num_workers", "datasets"}}``.
    """
    from segcore.data import build_dataset_mapper, build_detection_train_loader

    if settings.dataset:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.DATASETS.TRAIN = (settings.dataset,)
        cfg.freeze()
    loader = iter(build_detection_train_loader(cfg, mapper=build_dataset_mapper(cfg, True)))
    for _ in range(settings.warmup):
        next(loader)
    seconds = []
    for _ in range(settings.iters):
        start = time.perf_counter()
        next(loader)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    entry = {"median_s_per_batch": median, "min_s_per_batch": min(seconds), "max_s_per_batch": max(seconds),
             "images_per_s": cfg.SOLVER.IMS_PER_BATCH / median, "batch_size": cfg.SOLVER.IMS_PER_BATCH,
             "num_workers": cfg.DATALOADER.NUM_WORKERS, "datasets": list(cfg.DATASETS.TRAIN)}
    return {"this project": entry}
