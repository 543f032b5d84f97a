"""Timing calls: the device synchronized around the clock, and the statistics a report gives."""
from __future__ import annotations

import statistics
import time
from typing import Callable, List, Sequence, Tuple, TypeVar

import torch

__all__ = ["summarize", "synchronize", "time_calls_ms", "timed"]

_T = TypeVar("_T")


def synchronize(device: str) -> None:
    """Wait for the device's queued work ("cuda"); nothing on the CPU."""
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], _T], device: str) -> Tuple[float, _T]:
    """``(seconds, fn())``: the wall-clock time of one call, the device synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def time_calls_ms(call: Callable[[], object], device: str, repeats: int) -> List[float]:
    """The milliseconds of ``repeats`` calls of ``call``, one by one: CUDA events around each call
    on "cuda" (the device's time), ``time.perf_counter`` on the CPU."""
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def summarize(seconds: Sequence[float], per_call_images: int) -> dict:
    """Median, min and max seconds per image of the timed calls, and images per second.

    Args:
        seconds: the time of each call (at least one).
        per_call_images: images per call (each call's time is divided by it).

    Returns:
        ``{"median_s", "min_s", "max_s", "throughput_img_s", "calls"}`` (throughput inf for a
        median of 0).
    """
    per_image = [s / per_call_images for s in seconds]
    median = statistics.median(per_image)
    return {"median_s": median, "min_s": min(per_image), "max_s": max(per_image),
            "throughput_img_s": 1.0 / median if median > 0 else float("inf"), "calls": len(seconds)}
