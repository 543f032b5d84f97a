"""Benchmarks of a config's model (``tools/benchmark.py`` is the command line; results in
``docs/benchmarks.md``): end-to-end inference latency (optionally against another implementation,
e.g. a family's Hugging Face port), a training step, the training data loader; peak memory, the
machine, and where the time goes (``torch.profiler``).

One concept per module: :mod:`.settings` (what to measure, the config measured), :mod:`.machine`,
:mod:`.timing` (clock and statistics), :mod:`.memory` (:class:`MemoryMeter`), :mod:`.inputs`
(images and training batches), :mod:`.inference`, :mod:`.training`, :mod:`.data_loader`,
:mod:`.profiling`, :mod:`.report` (table, JSON, plot), :mod:`.exported` (an exported model's files).
This package imports no model family: an implementation to compare with is passed in
(:data:`~.inference.RunnerFactory`).
"""
from .data_loader import run_data
from .exported import ExportedInference, exported_runner_factory
from .inference import InferenceRunner, OurInference, RunnerFactory, run_inference
from .machine import machine_info, read_cpuinfo
from .memory import MemoryMeter
from .profiling import profile_call
from .report import format_load_average, format_profile, format_table, plot, write_json
from .settings import PRECISION_NAMES, BenchmarkSettings, benchmark_config
from .timing import summarize, synchronize, time_calls_ms, timed
from .training import run_train

__all__ = [
    "PRECISION_NAMES", "BenchmarkSettings", "ExportedInference", "InferenceRunner", "MemoryMeter", "OurInference",
    "RunnerFactory", "benchmark_config", "exported_runner_factory", "format_load_average", "format_profile",
    "format_table", "machine_info", "plot", "profile_call", "read_cpuinfo", "run_data", "run_inference", "run_train",
    "summarize", "synchronize", "time_calls_ms", "timed", "write_json",
]
