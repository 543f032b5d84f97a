#!/usr/bin/env python
"""Benchmark a config: inference latency end to end, a training step, or the data loader.

In the spirit of Detectron2's ``tools/benchmark.py``, with the same process measuring this project
and, with ``--compare hf``, the Hugging Face transformers port of the same architecture::

    # inference, one 512 x 770 image, 2 threads, against HF's Mask2Former in the same run
    python tools/benchmark.py --config-file configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml \\
        --input-size 512 770 --threads 2 --iters 10 --compare hf --json out.json
    # a training step (forward, backward, optimizer step) on a batch of 2 synthetic 512 x 512 images
    python tools/benchmark.py --config-file CONFIG --task train --batch-size 2 --input-size 512 512
    # the training data loader (mapper + batching) of DATASETS.TRAIN
    python tools/benchmark.py --config-file configs/quickstart/maskformer_R18_quickstart.yaml --task data
    # eager PyTorch against its ONNX (onnxruntime) and torch.export exports, same image, same run
    python tools/benchmark.py --config-file CONFIG --input-size 512 768 --threads 2 --exported export/onnx export/pt2
    # the latency plot of several --json results
    python tools/benchmark.py --plot docs/benchmarks_latency.png --from-json a.json b.json

Inference is timed end to end per call, from the uint8 BGR image (H, W, 3) to the outputs the
config asks for (``MODEL.MASK_FORMER.TEST.*_ON``): :class:`segcore.engine.DefaultPredictor`
(test-time resize, normalization, padding, the network, post-processing) at ``--precision``
(``TEST.PRECISION``), compiled with ``--compile`` (``TEST.COMPILE``). The Hugging Face side is its
image processor (resize, rescale, normalize, pad), the model, and the processor's post-processing
functions for the same outputs (``post_process_semantic_segmentation`` / ``_panoptic_`` /
``_instance_`` with the config's thresholds and ``target_sizes`` the image size). The two are timed
alternately, call by call, so that both see the same machine load. Weights are random (the
config's ``MODEL.WEIGHTS`` is ignored unless ``--weights`` is given); the HF Mask2Former gets our
weights converted (``tools/convert-hf-mask2former-to-d2.py``: the same function), the HF MaskFormer
its own random initialization (no converter exists). ``--exported DIR`` adds exported models
(:class:`segcore.export.ExportedPredictor`: the same resize, the exported network, the same
post-processing), timed alternately with the eager model; their weights are the export's.

Reported per implementation: the median, min and max latency per image (seconds), throughput
(images / s at the median), the split of the median call into pre-processing, network and
post-processing, the first call (with ``--compile``: the compilation, reported apart as
``compile_s``), and the peak memory: on CPU the process's peak resident set size during the
timed calls (the peak is reset before each call where Linux allows it, /proc/self/clear_refs;
it includes both models' weights when both are loaded), also as the increase over the resident
size before the call; on CUDA ``torch.cuda.max_memory_allocated``. Training: seconds per
iteration of :class:`segcore.engine.SimpleTrainer` / ``AMPTrainer`` (``--precision`` bf16 / fp16)
``run_step`` (forward, losses, backward, optimizer step of ``SOLVER.OPTIMIZER``) on one batch and
the peak memory. Data: seconds per batch of the training loader. The machine, the thread count
and the load average before and after are recorded with the results (``--json``). With
``--profile``, one more call of each implementation (or training step) runs under
``torch.profiler`` and the operators with the most self time are reported (where the time goes).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

from segcore.benchmark import (  # noqa: E402
    PRECISION_NAMES,
    BenchmarkSettings,
    benchmark_config,
    exported_runner_factory,
    format_load_average,
    format_profile,
    format_table,
    machine_info,
    plot,
    run_data,
    run_inference,
    run_train,
    write_json,
)

TASKS = ("inference", "train", "data")


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config-file", metavar="FILE", help="config to benchmark")
    parser.add_argument("--task", choices=TASKS, default="inference")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="random images of this size (else the images of --dataset / DATASETS.TEST[0])")
    parser.add_argument("--dataset", help="a registered dataset to read images from")
    parser.add_argument("--batch-size", type=int, default=1, help="images per call / per training iteration")
    parser.add_argument("--precision", choices=sorted(PRECISION_NAMES), default="fp32",
                        help="fp32, or autocast to bf16 (CPU, CUDA) / fp16 (CUDA) (TEST.PRECISION, AMP training)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone and head (TEST.COMPILE)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--iters", type=int, default=10, help="timed calls / iterations / batches")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (the first one is reported apart)")
    parser.add_argument("--compare", choices=("hf",), help="also time the Hugging Face port in the same run")
    parser.add_argument("--exported", nargs="+", default=[], metavar="DIR",
                        help="also time these export folders (tools/deploy/export_model.py: onnxruntime for "
                             "model.onnx, the torch.export program for model.pt2, the AOTInductor package for "
                             "model_aoti.pt2) in the same run; without "
                             "--config-file, the first export's config file is used")
    parser.add_argument("--weights", default="", help="weights to load (default: random; MODEL.WEIGHTS is ignored)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and images")
    parser.add_argument("--profile", action="store_true",
                        help="after timing, profile one more call of each implementation / training step (torch.profiler)")
    parser.add_argument("--profile-rows", type=int, default=12, help="operators listed per profile")
    parser.add_argument("--json", metavar="OUT", help="write the report (args, machine, results) as JSON")
    parser.add_argument("--label", help="a label for the report (the plot's group name)")
    parser.add_argument("--plot", metavar="PNG", help="plot the --from-json reports' latencies instead of measuring")
    parser.add_argument("--from-json", nargs="+", default=[], metavar="JSON", help="reports for --plot")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ...")
    return parser


def _measure(args: argparse.Namespace, settings: BenchmarkSettings) -> dict:
    cfg = benchmark_config(args.config_file, settings, train=args.task == "train", weights=args.weights,
                           opts=args.opts)
    if args.task == "train":
        return run_train(cfg, settings)
    if args.task == "data":
        return run_data(cfg, settings)
    compare = None
    if args.compare == "hf":
        from mask2former.benchmark_hf import HFInference

        compare = HFInference
    others = [exported_runner_factory(d) for d in args.exported]
    return run_inference(cfg, settings, compare=compare, others=others)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Command line (see the module docstring). Returns the report.

    Raises:
        ValueError: missing or inconsistent arguments (e.g. fp16 on the CPU, --compare hf with a
            model HF cannot reproduce).
    """
    args = build_parser().parse_args(argv)
    if args.plot:
        plot(args.from_json, args.plot)
        print(f"Wrote {args.plot}")
        return {"plot": args.plot}
    if args.exported and args.task != "inference":
        raise ValueError("--exported times inference only")
    if not args.config_file and args.exported:
        from segcore.export import read_export_info

        args.config_file = read_export_info(args.exported[0], check_model_file=False).config_file or None
    if not args.config_file:
        raise ValueError("--config-file is required (or --plot with --from-json)")
    settings = BenchmarkSettings(
        device=args.device, precision=args.precision, compile=args.compile, batch_size=args.batch_size,
        iters=args.iters, warmup=args.warmup, seed=args.seed,
        input_size=tuple(args.input_size) if args.input_size else None, dataset=args.dataset,
        profile=args.profile, profile_rows=args.profile_rows)
    if args.compare and args.task != "inference":
        raise ValueError("--compare hf times inference only")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = _measure(args, settings)
    report = {"args": vars(args), "label": args.label, "machine": machine_info(args.device, torch.get_num_threads()),
              "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
              "results": results}
    print(format_table(report))
    for name, entry in results.items():
        if isinstance(entry, dict) and entry.get("profile"):
            print(format_profile(name, entry["profile"]))
    print(format_load_average(load_before, report["load_average_after"]))
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
