"""Where the time of one call goes: ``torch.profiler``'s operators with the most self time."""
from __future__ import annotations

from typing import Callable, List

import torch

__all__ = ["profile_call"]


def profile_call(fn: Callable[[], object], rows: int) -> List[dict]:
    """One call of ``fn`` under ``torch.profiler``: the ``rows`` operators with the most self time
    (CPU, or CUDA where it ran), as ``{"op", "calls", "self_s", "self_share"}`` (seconds; share of
    the call's total self time) dicts, most first."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()
    use_cuda = torch.cuda.is_available() and any(getattr(e, "self_device_time_total", 0) for e in events)
    key = "self_device_time_total" if use_cuda else "self_cpu_time_total"
    total = sum(getattr(e, key) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:rows]
    return [{"op": e.key, "calls": e.count, "self_s": getattr(e, key) / 1e6, "self_share": getattr(e, key) / total}
            for e in ranked]
