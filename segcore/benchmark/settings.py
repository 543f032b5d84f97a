"""What a benchmark run is asked to do (:class:`BenchmarkSettings`), and the config it measures."""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import torch

__all__ = ["PRECISION_NAMES", "BenchmarkSettings", "benchmark_config"]

#: the precisions a benchmark runs at, by their short names (the config's ``TEST.PRECISION`` values)
PRECISION_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchmarkSettings:
    """The measurement's settings, shared by the inference, training and data tasks.

    Attributes:
        device: "cpu" or "cuda".
        precision: a key of :data:`PRECISION_NAMES` (inference autocast, AMP training).
        compile: ``torch.compile`` the backbone and head (``TEST.COMPILE`` / ``SOLVER.COMPILE``).
        batch_size: images per call / per training iteration.
        iters: timed calls / iterations / batches.
        warmup: untimed calls first (the first one is reported apart).
        seed: seed of the random weights and images.
        input_size: ``(H, W)`` of random images, or None for a dataset's images.
        dataset: a registered dataset to read images from (None: ``DATASETS.TEST[0]`` for inference,
            ``DATASETS.TRAIN`` for the data loader).
        profile: after timing, profile one more call (or training step) with ``torch.profiler``.
        profile_rows: operators listed per profile.

    Raises:
        ValueError: ``iters``, ``batch_size`` or ``warmup`` below 1, CUDA asked for but not
            available, fp16 on the CPU, or an unknown precision.
    """

    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False
    batch_size: int = 1
    iters: int = 10
    warmup: int = 2
    seed: int = 0
    input_size: Optional[Tuple[int, int]] = None
    dataset: Optional[str] = None
    profile: bool = False
    profile_rows: int = 12

    def __post_init__(self):
        if self.iters < 1 or self.batch_size < 1 or self.warmup < 1:
            raise ValueError("--iters, --batch-size and --warmup must be >= 1 (the first call is always a warmup)")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available")
        if self.precision not in PRECISION_NAMES:
            raise ValueError(f"precision '{self.precision}': one of {sorted(PRECISION_NAMES)}")
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("--precision fp16 needs --device cuda; use bf16 on the CPU")


def benchmark_config(config_file: str, settings: BenchmarkSettings, *, train: bool = False, weights: str = "",
                     opts: Sequence[str] = ()):
    """The config a benchmark measures: the file, random weights (unless ``weights``), the
    settings' device, precision and compile switches (and, for ``train``, ``SOLVER.COMPILE`` and
    the batch size as ``SOLVER.IMS_PER_BATCH``), then ``opts``.

    Raises:
        segcore.config.ConfigError: see :func:`segcore.engine.setup_cfg`.
    """
    from segcore.engine import setup_cfg

    # random weights are what a speed measurement without weights means
    base = ["MODEL.WEIGHTS", weights or "", "MODEL.ALLOW_PARTIAL_WEIGHTS", str(not weights),
            "MODEL.DEVICE", settings.device,
            "TEST.PRECISION", PRECISION_NAMES[settings.precision], "TEST.COMPILE", str(bool(settings.compile))]
    if train:
        base += ["SOLVER.COMPILE", str(bool(settings.compile)), "SOLVER.IMS_PER_BATCH", str(settings.batch_size)]
    return setup_cfg(config_file, base + list(opts))
