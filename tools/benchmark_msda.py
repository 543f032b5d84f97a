#!/usr/bin/env python
"""Benchmark multi-scale deformable attention: the compiled kernels against the PyTorch reference.

Times one call of the attention core (forward, and forward + backward) at Mask2Former R50 encoder
shapes (batch 2; 512 x 512 and 1024 x 1024 inputs: levels at strides 8, 16, 32, 8 heads, 4 points,
256 channels so D = 32; every position a query, sampling around its own pixel:
:func:`mask2former.ops.example_inputs.encoder_inputs`), and the peak memory the call adds on top of
its inputs. Every configuration runs in its own subprocess:

- CPU: ``--threads`` intra-op threads; peak memory = the process's peak resident set size during the
  calls minus its resident size before them (the peak is reset first where Linux allows:
  /proc/self/clear_refs), so allocations of torch's CPU allocator are counted;
- CUDA (when present): CUDA events for the time, ``torch.cuda.max_memory_allocated`` minus the memory
  allocated before the calls.

"kernel" is the registered operator with its compiled kernel (the run fails if none is available),
"pytorch" the reference; forward + backward differentiates with respect to value, sampling
locations and attention weights. Prints a Markdown table (and writes it with ``--output``).

Example::

    python tools/benchmark_msda.py --device cpu --threads 2 --output docs/msda_benchmark_table.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List

MODES = ("forward", "forward_backward")
IMPLS = ("kernel", "pytorch")


def run_worker(args) -> Dict:
    """One configuration, in this process: returns its timings (ms) and peak memory (MiB)."""
    import torch

    from mask2former.ops import ms_deform_attn, select_implementation
    from segcore.utils.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
    from mask2former.ops.example_inputs import encoder_inputs

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    inputs = encoder_inputs(args.batch, args.size, dtype=dtype, device=device, seed=0)
    value, shapes, starts, locations, weights = inputs
    impl_name = "pytorch" if args.impl == "pytorch" else "auto"
    if args.impl == "kernel":
        chosen = select_implementation(device, dtype)
        if not chosen.is_kernel:
            raise SystemExit(f"no compiled kernel for {device.type} {args.dtype}: {chosen.reason}")
    backward = args.mode == "forward_backward"
    leaves = [t.requires_grad_(backward) for t in (value, locations, weights)]
    grad = torch.randn(args.batch, locations.shape[1], value.shape[2] * value.shape[3], dtype=dtype,
                       device=device) if backward else None

    def call():
        out = ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2], impl=impl_name)
        if backward:
            out.backward(grad)
            for leaf in leaves:
                leaf.grad = None
        del out

    cuda = device.type == "cuda"
    for _ in range(args.warmup):
        call()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset = reset_peak_rss()
        base = rss_bytes()
    times = []
    for _ in range(args.repeats):
        if cuda:
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
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base
        memory_note = "max_memory_allocated"
    else:
        peak = peak_rss_bytes() - base
        memory_note = "peak RSS (reset)" if reset else "peak RSS (since start)"
    return {"device": args.device, "size": args.size, "impl": args.impl, "mode": args.mode, "dtype": args.dtype,
            "threads": args.threads, "median_ms": statistics.median(times), "min_ms": min(times),
            "peak_mib": peak / 2**20, "memory": memory_note, "implementation": select_implementation(device, dtype).reason
            if args.impl == "kernel" else "the PyTorch reference (impl='pytorch')"}


def run_configuration(args, device: str, size: int, impl: str, mode: str) -> Dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--device", device, "--sizes", str(size),
           "--impl", impl, "--mode", mode, "--threads", str(args.threads), "--batch", str(args.batch),
           "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--dtype", args.dtype]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env.pop("MSDA_FORCE_PYTORCH", None)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{device} {size} {impl} {mode} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_description(devices: List[str], threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
        flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
        cpu = f"{names[0] if names else cpu}, {len(names)} logical CPUs, AVX2+FMA: " \
              f"{'yes' if ' avx2' in flags and ' fma' in flags else 'no'}"
    except OSError:
        pass
    text = f"CPU: {cpu}; {threads} torch threads; torch {torch.__version__}; Python {platform.python_version()}"
    if "cuda" in devices:
        text += f"; GPU: {torch.cuda.get_device_name()}"
    return text


def markdown_table(results: List[Dict]) -> str:
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", nargs="+", default=None, choices=["cpu", "cuda"],
                        help="devices to run on (default: cpu, and cuda when available)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024], help="input sizes (pixels)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads on the CPU")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"])
    parser.add_argument("--impl", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--mode", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--output", help="also write the Markdown table (with the machine) to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        args.device, args.size, args.impl, args.mode = args.device[0], args.sizes[0], args.impl[0], args.mode[0]
        print(json.dumps(run_worker(args)))
        return
    import torch

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = []
    for device in devices:
        for size in args.sizes:
            for mode in args.mode:
                for impl in args.impl:
                    r = run_configuration(args, device, size, impl, mode)
                    print(f"{device} {size} {mode} {impl}: {r['median_ms']:.1f} ms (min {r['min_ms']:.1f}), "
                          f"peak +{r['peak_mib']:.0f} MiB [{r['memory']}] - {r['implementation']}", flush=True)
                    results.append(r)
    text = (f"Machine: {machine_description(devices, args.threads)}\n\n"
            f"Batch {args.batch}, {args.dtype}, median of {args.repeats} calls after {args.warmup} warm-up\n\n"
            + markdown_table(results) + "\n")
    print()
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
