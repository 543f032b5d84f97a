"""Multi-scale deformable attention alone, three implementations timed in one process on the same
inputs: the registered operator with its compiled kernel ("kernel"), the PyTorch reference
``ms_deform_attn_pytorch`` ("reference") and the Hugging Face port's function, ``grid_sample`` per
level as in the original's PyTorch path ("hf").

    python -m mask2former.devcheck.op_benchmark --device cuda --size 1024 --dtypes float32 bfloat16 --json op.json

Inputs are Mask2Former R50's encoder self-attention (:func:`mask2former.ops.example_inputs.encoder_inputs`:
levels at strides 8, 16, 32 of a ``--size`` square, 8 heads, 4 points, D = 32). For each dtype and
mode (forward; forward + backward to value, locations and weights), the median and minimum of
``--repeats`` calls after ``--warmup`` (CUDA events on a GPU) and, on a GPU, the peak memory the
call adds; and how far each implementation's output is from the reference's.
``tools/benchmark_msda.py`` measures the kernel against the reference in separate processes at
several sizes (``docs/msda_benchmark.md``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Callable, Dict, List, Optional

IMPLEMENTATIONS = ("kernel", "reference", "hf")
MODES = ("forward", "forward_backward")


def implementations(shapes_list) -> Dict[str, Callable]:
    """name -> f(value, spatial_shapes, level_start_index, locations, weights)."""
    from mask2former.ops import ms_deform_attn, ms_deform_attn_pytorch

    table = {"kernel": ms_deform_attn, "reference": ms_deform_attn_pytorch}
    try:
        from transformers.models.mask2former.modeling_mask2former import multi_scale_deformable_attention
    except ImportError:
        return table
    table["hf"] = lambda value, shapes, starts, locations, weights: multi_scale_deformable_attention(
        value, shapes_list, locations, weights)
    return table


def time_calls(call: Callable[[], None], device, repeats: int, warmup: int) -> dict:
    """Median and minimum milliseconds of ``call`` (CUDA events on a GPU: the device's time) after
    ``warmup`` calls and, on CUDA, the peak memory it adds (MiB)."""
    import torch

    from segcore.benchmark.timing import time_calls_ms

    cuda = device.type == "cuda"
    for _ in range(warmup):
        call()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = time_calls_ms(call, device.type, repeats)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else None
    return {"median_ms": statistics.median(times), "min_ms": min(times), "peak_mib": peak}


def measure(device, size: int, batch: int, dtype_name: str, repeats: int, warmup: int) -> List[dict]:
    """Every implementation and mode at one dtype; one row each."""
    import torch

    from mask2former.ops import select_implementation
    from mask2former.ops.example_inputs import encoder_inputs

    dtype = getattr(torch, dtype_name)
    value, shapes, starts, locations, weights = encoder_inputs(batch, size, dtype=dtype, device=device, seed=0)
    table = implementations([tuple(int(v) for v in hw) for hw in shapes.tolist()])
    with torch.no_grad():
        expected = table["reference"](value, shapes, starts, locations, weights).float()
    scale = expected.abs().max().item() or 1.0
    rows = []
    for name, fn in table.items():
        with torch.no_grad():
            got = fn(value, shapes, starts, locations, weights).float()
        difference = (got - expected).abs().max().item() / scale
        what = select_implementation(device, dtype).reason if name == "kernel" else name
        for mode in MODES:
            backward = mode == "forward_backward"
            leaves = [t.detach().clone().requires_grad_(backward) for t in (value, locations, weights)]
            grad = torch.randn_like(expected).to(dtype) if backward else None

            def call():
                out = fn(leaves[0], shapes, starts, leaves[1], leaves[2])
                if grad is not None:
                    out.backward(grad)
                    for leaf in leaves:
                        leaf.grad = None

            row = {"impl": name, "implementation": what, "mode": mode, "dtype": dtype_name,
                   "max_rel_difference_from_reference": difference}
            row.update(time_calls(call, device, repeats, warmup))
            rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--size", type=int, default=1024, help="the input image's side (a multiple of 32)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        choices=("float32", "float64", "float16", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", required=True)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)

    import torch

    from mask2former.ops import select_implementation

    device = torch.device(args.device)
    problems = []
    if not select_implementation(device, torch.float32).is_kernel:
        problems.append(f"no compiled kernel runs on {args.device}: "
                        f"{select_implementation(device, torch.float32).reason}")
    rows = []
    for dtype_name in args.dtypes:
        rows += measure(device, args.size, args.batch, dtype_name, args.repeats, args.warmup)
    if not any(r["impl"] == "hf" for r in rows):
        problems.append("transformers is not importable: Hugging Face's path was not timed")
    result = {"device": args.device, "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
              "size": args.size, "batch": args.batch, "torch": torch.__version__, "results": rows, "problems": problems}
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    for r in rows:
        peak = "" if r["peak_mib"] is None else f", +{r['peak_mib']:.0f} MiB"
        print(f"{r['dtype']:>8} {r['mode']:<16} {r['impl']:<9} {r['median_ms']:8.2f} ms (min {r['min_ms']:.2f}){peak}"
              f"  max rel. difference from the reference {r['max_rel_difference_from_reference']:.1e}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
