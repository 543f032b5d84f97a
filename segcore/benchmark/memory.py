"""Peak memory of a block of work: the process's peak resident set size on the CPU, the peak
allocation on CUDA."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from segcore.utils.memory import peak_rss_bytes, reset_peak_rss, rss_bytes

__all__ = ["MemoryMeter"]


class MemoryMeter:
    """Peak memory of a block: CPU peak RSS (reset first where possible) or CUDA peak allocation.

    ``with meter.measure(): ...`` then ``meter.peak`` (bytes, the maximum over all measured blocks)
    and ``meter.increase`` (bytes, the largest peak minus the usage just before its block).
    On the CPU the peak is reset before each block where Linux allows (``/proc/self/clear_refs``);
    where it does not, the peak is the process's since it started (``reset_supported`` False).
    """

    def __init__(self, *, device: str):
        """
        Args:
            device: "cpu" or "cuda".
        """
        self.device = device
        self.peak = 0
        self.increase = 0
        self.reset_supported = True

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        """Measure the block inside the ``with``."""
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            self.reset_supported = reset_peak_rss() and self.reset_supported
            before = rss_bytes()
        yield
        if self.device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = peak_rss_bytes()
        self.peak = max(self.peak, peak)
        self.increase = max(self.increase, peak - before)

    @property
    def kind(self) -> str:
        """What was measured: ``"cuda_max_memory_allocated"``, ``"peak_rss"`` or
        ``"peak_rss_since_process_start"``."""
        if self.device == "cuda":
            return "cuda_max_memory_allocated"
        return "peak_rss" if self.reset_supported else "peak_rss_since_process_start"

    def as_dict(self) -> dict:
        """``{"peak_memory_mb", "peak_memory_increase_mb", "memory_measure"}`` (MiB, one decimal)."""
        return {"peak_memory_mb": round(self.peak / 2**20, 1),
                "peak_memory_increase_mb": round(self.increase / 2**20, 1), "memory_measure": self.kind}
