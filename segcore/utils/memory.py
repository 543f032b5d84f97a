"""Recovering from CUDA out-of-memory errors (Detectron2's ``detectron2/utils/memory.py``), and
reading the process's resident memory (for the benchmarks)."""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, TypeVar

import torch

__all__ = ["peak_rss_bytes", "reset_peak_rss", "retry_if_cuda_oom", "rss_bytes"]

_R = TypeVar("_R")


def _is_cuda_oom(error: BaseException) -> bool:
    """Whether ``error`` is an accelerator out-of-memory error.

    ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError``) is what the allocator raises;
    a plain RuntimeError with CUDA's message is also accepted, as some extensions raise that.
    """
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "CUDA out of memory" in str(error)


def _to_cpu_if_cuda(x: Any) -> Any:
    """``x.to(device="cpu")`` for a tensor-like object on a CUDA device; anything else unchanged."""
    device = getattr(x, "device", None)
    if getattr(device, "type", None) == "cuda" and hasattr(x, "to"):
        return x.to(device="cpu")
    return x


def retry_if_cuda_oom(func: Callable[..., _R]) -> Callable[..., _R]:
    """Wrap ``func`` so it survives a CUDA out-of-memory error (Detectron2 ``retry_if_cuda_oom``).

    The wrapper calls ``func(*args, **kwargs)``. On an out-of-memory error it frees PyTorch's
    cached CUDA blocks (``torch.cuda.empty_cache()``, only when CUDA has been initialized) and
    calls it again. If that also runs out of memory, it logs (INFO, logger
    ``segcore.utils.memory``) that it copies the inputs to the CPU, and calls it a third time
    with every positional and keyword argument that is on a CUDA device (has ``.device.type ==
    "cuda"`` and ``.to``) replaced by ``arg.to(device="cpu")``; ``func`` is expected to dispatch
    to a CPU implementation then, and its result is returned as it is (CPU tensors; moving them
    back is the caller's business). Used by Mask2Former for full-resolution mask post-processing
    at inference, where one large image can exhaust GPU memory.

    Nothing CUDA-related is touched unless ``func`` raises an out-of-memory error, so the
    wrapper is free on CPU-only machines.

    Args:
        func: a stateless callable (it may run up to three times) taking tensors as top-level
            arguments; tensors inside lists, dicts or other containers are not moved.

    Returns:
        a callable with ``func``'s signature (``functools.wraps``).

    Raises:
        whatever ``func`` raises other than an out-of-memory error, immediately; an
        out-of-memory error from the third (CPU) attempt is re-raised.

    Example::

        masks = retry_if_cuda_oom(sem_seg_postprocess)(mask_pred, image_size, height, width)
        # masks may be on the CPU even though mask_pred was on the GPU
    """

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> _R:
        try:
            return func(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - anything but an OOM is re-raised below
            if not _is_cuda_oom(e):
                raise
        # first retry: release the cached blocks PyTorch holds (never initializes CUDA)
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
        try:
            return func(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if not _is_cuda_oom(e):
                raise
        # second retry on the CPU: much slower, so say so
        logging.getLogger(__name__).info("Attempting to copy inputs of %s to CPU due to CUDA OOM", func)
        cpu_args = [_to_cpu_if_cuda(x) for x in args]
        cpu_kwargs = {k: _to_cpu_if_cuda(v) for k, v in kwargs.items()}
        return func(*cpu_args, **cpu_kwargs)

    return wrapped


def rss_bytes() -> int:
    """The process's resident set size now, in bytes (Linux ``/proc/self/statm``).

    Raises:
        OSError: ``/proc`` is not available (not Linux).
    """
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set size (``VmHWM``) to the current one, where Linux allows
    it (``/proc/self/clear_refs``). Returns whether it was reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """The process's peak resident set size in bytes: ``VmHWM`` of ``/proc/self/status`` (since
    the last :func:`reset_peak_rss`), else ``getrusage``'s maximum since the process started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # Unix only, hence imported here

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
