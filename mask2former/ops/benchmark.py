"""Timing multi-scale deformable attention: the compiled kernels against the PyTorch reference
(``tools/benchmark_msda.py`` is the command line; results in ``docs/msda_benchmark.md``).

One call of the attention core (forward, or forward + backward with respect to value, sampling
locations and attention weights) at Mask2Former's encoder shapes
(:func:`mask2former.ops.example_inputs.encoder_inputs`), timed after warm-up calls, and the peak
memory the calls add on top of their inputs: on the CPU the process's peak resident set size minus
its resident size before them (the peak reset first where Linux allows), on CUDA
``torch.cuda.max_memory_allocated`` minus the memory allocated before (CUDA events for the time).
:func:`run_configuration` runs each configuration in its own Python process, so that one's memory
and threads do not disturb the next.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from typing import Dict, List, Sequence

__all__ = ["IMPLS", "MODES", "machine_description", "markdown_table", "run_configuration", "time_configuration"]

#: what is timed: the forward call, or forward and backward
MODES = ("forward", "forward_backward")
#: "kernel": the registered operator with its compiled kernel; "pytorch": the reference
IMPLS = ("kernel", "pytorch")
#: how each memory measure is named in the results
_MEMORY_NOTES = {"cuda_max_memory_allocated": "max_memory_allocated", "peak_rss": "peak RSS (reset)",
                 "peak_rss_since_process_start": "peak RSS (since start)"}
#: the package folder's parent, so that a worker process imports this package as this one does
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_WORKER = ("import json, sys; from mask2former.ops.benchmark import time_configuration; "
           "print(json.dumps(time_configuration(**json.loads(sys.argv[1]))))")


def time_configuration(*, device: str, size: int, impl: str, mode: str, dtype: str = "float32", threads: int = 2,
                       batch: int = 2, repeats: int = 5, warmup: int = 1) -> Dict:
    """Time one configuration in this process.

    Args:
        device: "cpu" or "cuda".
        size: the input image's side (pixels): levels at strides 8, 16, 32.
        impl: one of :data:`IMPLS`.
        mode: one of :data:`MODES`.
        dtype: a torch dtype's name ("float32", "float64", "bfloat16", "float16").
        threads: torch intra-op threads.
        batch: images per call.
        repeats: timed calls (the median and minimum are reported).
        warmup: untimed calls first.

    Returns:
        ``{"device", "size", "impl", "mode", "dtype", "threads", "median_ms", "min_ms", "peak_mib",
        "memory" (what the peak measures), "implementation" (what ran)}``.

    Raises:
        SystemExit: ``impl`` "kernel" where no compiled kernel serves the device and dtype.
    """
    import torch

    from segcore.benchmark import MemoryMeter, time_calls_ms

    from . import ms_deform_attn, select_implementation
    from .example_inputs import encoder_inputs

    torch.set_num_threads(threads)
    torch_device = torch.device(device)
    torch_dtype = getattr(torch, dtype)
    chosen = select_implementation(torch_device, torch_dtype)
    if impl == "kernel" and not chosen.is_kernel:
        raise SystemExit(f"no compiled kernel for {device} {dtype}: {chosen.reason}")
    impl_name = "pytorch" if impl == "pytorch" else "auto"
    value, shapes, starts, locations, weights = encoder_inputs(batch, size, dtype=torch_dtype, device=torch_device,
                                                               seed=0)
    backward = mode == "forward_backward"
    leaves = [t.requires_grad_(backward) for t in (value, locations, weights)]
    grad = torch.randn(batch, locations.shape[1], value.shape[2] * value.shape[3], dtype=torch_dtype,
                       device=torch_device) if backward else None

    def call():
        out = ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2], impl=impl_name)
        if backward:
            out.backward(grad)
            for leaf in leaves:
                leaf.grad = None
        del out

    for _ in range(warmup):
        call()
    meter = MemoryMeter(device=torch_device.type)
    with meter.measure():
        times = time_calls_ms(call, torch_device.type, repeats)
    return {"device": device, "size": size, "impl": impl, "mode": mode, "dtype": dtype, "threads": threads,
            "median_ms": statistics.median(times), "min_ms": min(times), "peak_mib": meter.increase / 2**20,
            "memory": _MEMORY_NOTES[meter.kind],
            "implementation": chosen.reason if impl == "kernel" else "the PyTorch reference (impl='pytorch')"}


def run_configuration(*, device: str, size: int, impl: str, mode: str, dtype: str = "float32", threads: int = 2,
                      batch: int = 2, repeats: int = 5, warmup: int = 1) -> Dict:
    """:func:`time_configuration` in a new Python process (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
    set to ``threads``, ``MSDA_FORCE_PYTORCH`` unset); the same arguments and result.

    Raises:
        RuntimeError: the process failed (its output and the end of its error output are given).
    """
    spec = {"device": device, "size": size, "impl": impl, "mode": mode, "dtype": dtype, "threads": threads,
            "batch": batch, "repeats": repeats, "warmup": warmup}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env.pop("MSDA_FORCE_PYTORCH", None)
    result = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(spec)], env=env, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{device} {size} {impl} {mode} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_description(devices: Sequence[str], threads: int) -> str:
    """One line: the CPU (model, logical CPUs, whether it has AVX2 and FMA), the thread count, the
    torch and Python versions, and the GPU when ``devices`` has "cuda"."""
    import torch

    from segcore.benchmark.machine import read_cpuinfo

    cpu = platform.processor() or platform.machine()
    cpuinfo = read_cpuinfo()
    if cpuinfo is not None:
        avx2_fma = "avx2" in cpuinfo.flags and "fma" in cpuinfo.flags
        cpu = (f"{cpuinfo.model_names[0] if cpuinfo.model_names else cpu}, {len(cpuinfo.model_names)} logical CPUs, "
               f"AVX2+FMA: {'yes' if avx2_fma else 'no'}")
    text = f"CPU: {cpu}; {threads} torch threads; torch {torch.__version__}; Python {platform.python_version()}"
    if "cuda" in devices:
        text += f"; GPU: {torch.cuda.get_device_name()}"
    return text


def markdown_table(results: List[Dict]) -> str:
    """A Markdown table of :func:`time_configuration` results: one row per device, size and mode
    with both implementations (rows missing one are left out), their times, speed-up and memory."""
    rows = [("| device | input | mode | reference ms, median (min) | kernel ms, median (min) | speed-up (medians) | "
             "reference peak (MiB) | kernel peak (MiB) | kernel / reference memory |"),
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    index = {(r["device"], r["size"], r["mode"], r["impl"]): r for r in results}
    for device, size, mode in sorted({(r["device"], r["size"], r["mode"]) for r in results},
                                     key=lambda k: (k[0], k[1], MODES.index(k[2]))):
        ref, ker = index.get((device, size, mode, "pytorch")), index.get((device, size, mode, "kernel"))
        if ref is None or ker is None:
            continue
        rows.append(f"| {device} | {size}x{size} | {mode.replace('_', ' + ')} | {ref['median_ms']:.1f} "
                    f"({ref['min_ms']:.1f}) | {ker['median_ms']:.1f} ({ker['min_ms']:.1f}) | "
                    f"{ref['median_ms'] / ker['median_ms']:.1f}x | {ref['peak_mib']:.0f} | "
                    f"{ker['peak_mib']:.0f} | {ker['peak_mib'] / max(ref['peak_mib'], 1e-9):.2f} |")
    return "\n".join(rows)
