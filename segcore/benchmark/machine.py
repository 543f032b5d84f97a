"""What a benchmark records about the machine it ran on: the CPU (model, logical CPUs, vector
instructions), the thread count, the versions of Python, torch and transformers, the GPU."""
from __future__ import annotations

import os
import platform
from typing import List, NamedTuple, Optional

import torch

__all__ = ["CpuInfo", "describe_cpu", "machine_info", "read_cpuinfo"]


class CpuInfo(NamedTuple):
    """What Linux's ``/proc/cpuinfo`` says."""

    model_names: List[str]  #: one "model name" per logical CPU
    flags: frozenset  #: the first CPU's feature flags (``avx2``, ``avx512f``, ``amx_bf16``, ...)


def read_cpuinfo(path: str = "/proc/cpuinfo") -> Optional[CpuInfo]:
    """The CPU's model names and flags, or None where ``path`` cannot be read (not Linux)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags") and ":" in line), [])
    return CpuInfo(names, frozenset(flags))


def describe_cpu(cpuinfo: Optional[CpuInfo] = None) -> str:
    """The CPU in words, with the vector instructions that change float rounding between machines,
    e.g. ``"AMD EPYC, 2 logical CPUs, AVX2 + FMA, no AVX-512"``.

    Args:
        cpuinfo: what :func:`read_cpuinfo` returned (read now when None); where it is unavailable
            the model comes from :func:`platform.processor` and the instructions are not named.
    """
    cpuinfo = read_cpuinfo() if cpuinfo is None else cpuinfo
    count = f"{os.cpu_count()} logical CPUs"
    if cpuinfo is None:
        return ", ".join(part for part in (platform.processor(), count) if part)
    model = cpuinfo.model_names[0] if cpuinfo.model_names else platform.processor() or "unknown CPU"
    flags = cpuinfo.flags
    vector = [name for flag, name in (("avx2", "AVX2"), ("fma", "FMA")) if flag in flags]
    avx512 = sorted(flag.upper() for flag in flags if flag.startswith("avx512"))
    extra = [name for flag, name in (("amx_bf16", "AMX-BF16"),) if flag in flags]
    parts = [model, count, " + ".join(vector) if vector else "no AVX2",
             " + ".join(avx512) if avx512 else "no AVX-512", *extra]
    return ", ".join(parts)


def machine_info(device: str, threads: int) -> dict:
    """The machine, for a report.

    Args:
        device: "cpu" or "cuda" (then the GPU's name is added).
        threads: torch's intra-op threads.

    Returns:
        ``{"cpu", "cpu_count", "torch_threads", "torch", "python", "avx512", "avx512_bf16", "amx"}``,
        plus ``"transformers"`` (its version, when installed) and ``"gpu"`` (CUDA).
    """
    cpuinfo = read_cpuinfo()
    flags = cpuinfo.flags if cpuinfo else frozenset()
    cpu = cpuinfo.model_names[0] if cpuinfo and cpuinfo.model_names else platform.processor() or ""
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "avx512": "avx512f" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags}
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
