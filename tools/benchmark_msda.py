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
locations and attention weights. Prints a Markdown table (and writes it with ``--output``). The
timing is :mod:`mask2former.ops.benchmark`'s.

Example::

    python tools/benchmark_msda.py --device cpu --threads 2 --output docs/msda_benchmark_table.md
"""
from __future__ import annotations

import argparse
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mask2former.ops.benchmark import IMPLS, MODES, machine_description, markdown_table, run_configuration  # noqa: E402


def parse_args(argv=None):
    """The command line (see the module docstring)."""
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
    return parser.parse_args(argv)


def main(argv=None) -> list:
    """Command line: every device x size x mode x implementation in its own process; prints each
    result and the table. Returns the results (:func:`mask2former.ops.benchmark.time_configuration`'s).

    Raises:
        RuntimeError: a configuration failed (e.g. no compiled kernel for the device and dtype).
    """
    args = parse_args(argv)
    import torch

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = []
    for device in devices:
        for size in args.sizes:
            for mode in args.mode:
                for impl in args.impl:
                    r = run_configuration(device=device, size=size, impl=impl, mode=mode, dtype=args.dtype,
                                          threads=args.threads, batch=args.batch, repeats=args.repeats,
                                          warmup=args.warmup)
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
    return results


if __name__ == "__main__":
    main()
