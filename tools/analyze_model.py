#!/usr/bin/env python
"""Count a model's parameters and FLOPs (the original MaskFormer / Mask2Former ``tools/analyze_model.py``).

Examples::

    # the papers' ADE20K figures: one 512x512 image (INPUT.CROP.SIZE), as the originals' flag
    python tools/analyze_model.py --config-file configs/ade20k-150/maskformer_R50_bs16_160k.yaml \\
        --tasks parameter flop --use-fixed-input-size --opts MODEL.WEIGHTS ""
    # panoptic / instance figures: averaged over test images (DATASETS.TEST[0] under ./datasets)
    python tools/analyze_model.py --config-file CONFIG --tasks flop --num-inputs 100 \\
        --opts MODEL.WEIGHTS model_final.pkl
    # a given input size (synthetic image)
    python tools/analyze_model.py --config-file CONFIG --tasks flop --input-size 800 1333

What is counted (``segcore.analysis.flop_count`` has the details, and how the originals counted: the
same way, Detectron2's ``FlopCountAnalysis``): the whole model in eval mode as it runs, traced by
fvcore, one fused multiply-add = one FLOP. Convolutions, linear layers, matrix products (those with
``out=`` or an added operand too), einsum; attention (``scaled_dot_product_attention``: Q K^T and the
weighted sum of V); Mask2Former's deformable attention (5 multiply-adds per sampled channel); group /
layer norm (5 per element; eval-mode batch norm 0); resizes (bilinear 4 per output element).
Post-processing: the semantic inference's (K, N) x (N, H x W) product at the image resolution and
the resizes of the masks; the panoptic and instance steps (thresholds, argmax, sums) are
elementwise and count nothing. Elementwise operators, reductions and softmax are not counted
(Detectron2's convention); any other operator without a formula is listed at the end as not counted.

Inputs: ``--use-fixed-input-size`` is one synthetic image of INPUT.CROP.SIZE[0] squared;
``--input-size H [W]`` synthetic images of that size; otherwise the first ``--num-inputs`` images of
DATASETS.TEST[0] mapped as at test time (resized by INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST) when that
dataset is on disk, else synthetic images of INPUT.MIN_SIZE_TEST squared (512 if that is 0). The
total is averaged over the inputs; the per-module table is the first input's. Measured figures next
to the papers': MODEL_ZOO.md, "Parameters and FLOPs".
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from torch import nn  # noqa: E402

from segcore.analysis import count_flops, count_parameters, fixed_input_size, flop_inputs  # noqa: E402
from segcore.engine import run_cli  # noqa: E402
from segcore.engine import setup_cfg as setup_cfg_from_file  # noqa: E402
from segcore.modeling import build_model  # noqa: E402
from segcore.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("segcore.analyze_model")

TASKS = ("parameter", "flop")


def setup_cfg(args: argparse.Namespace):
    """Frozen config: defaults, every installed model family's keys, the file, the overrides.

    ``MODEL.DEVICE`` falls back to ``cpu`` when CUDA is requested but unavailable.
    """
    return setup_cfg_from_file(args.config_file, args.opts)


def _build_eval_model(cfg) -> nn.Module:
    from segcore.checkpoint import DetectionCheckpointer

    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model.eval()


def do_parameter(cfg, max_depth: int = 3) -> Dict[str, object]:
    """Parameter count of the model built from ``cfg``: ``{"total": elements, "table": per-module table}``."""
    result = count_parameters(build_model(cfg), max_depth=max_depth)
    logger.info(f"Parameter count: {result.total} ({result.total / 1e6:.2f} M)\n" + result.table)
    return {"total": result.total, "table": result.table}


def do_flop(cfg, num_inputs: int, max_depth: int = 3, input_size: Optional[Sequence[int]] = None,
            inputs: Optional[List[dict]] = None) -> Dict[str, object]:
    """FLOPs of the model in eval mode, averaged over inputs (see the module docstring).

    Args:
        num_inputs: number of inputs to measure (>= 1).
        max_depth: depth of the per-module table.
        input_size: (height, width) of synthetic inputs; None: the test set's images if available.
        inputs: model input dicts to use instead.

    Returns:
        {"gflops": per-input GFLOPs, "mean_gflops", "std_gflops", "table": per-module table of the
        first input, "by_operator": mean GFLOPs per operator type, "unsupported_ops": {operator:
        occurrences over all inputs}, "source": "dataset", "synthetic" or "given", "input_size":
        (H, W) of the first input}.

    Raises:
        ValueError: ``num_inputs`` < 1.
    """
    source = "given"
    if inputs is None:
        inputs, source = flop_inputs(cfg, num_inputs, input_size)
    result = count_flops(_build_eval_model(cfg), inputs, max_depth=max_depth)
    size = tuple(int(s) for s in inputs[0]["image"].shape[-2:])
    logger.info(f"FLOP table of the first input ({size[0]}x{size[1]}):\n" + result.table)
    logger.info("Average GFLOPs per operator type: "
                + ", ".join(f"{k}: {v:.3f}" for k, v in result.by_operator.items()))
    logger.info(f"Total GFLOPs: {result.mean_gflops:.3f} ± {result.std_gflops:.3f} over {len(result.gflops)} "
                f"{source} input(s) (first {size[0]}x{size[1]})")
    if result.unsupported_ops:
        logger.warning("Operators without a FLOP formula, not counted (occurrences over all inputs): "
                       + ", ".join(f"{k} x{v}" for k, v in sorted(result.unsupported_ops.items(),
                                                                   key=lambda kv: -kv[1])))
    return {"gflops": result.gflops, "mean_gflops": result.mean_gflops, "std_gflops": result.std_gflops,
            "table": result.table, "by_operator": result.by_operator, "unsupported_ops": result.unsupported_ops,
            "source": source, "input_size": size}


def get_parser() -> argparse.ArgumentParser:
    """The tool's command line."""
    parser = argparse.ArgumentParser(
        description="Count a model's parameters and FLOPs.",
        epilog=__doc__.split("Examples::", 1)[1].split("What is counted", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="path to a config file")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="what to count (default: both)")
    parser.add_argument("-n", "--num-inputs", type=int, default=1,
                        help="number of inputs to average FLOPs over (FLOPs depend on the input size)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--use-fixed-input-size", action="store_true",
                      help="one synthetic image of INPUT.CROP.SIZE[0] x INPUT.CROP.SIZE[0] pixels (the papers' "
                           "semantic-segmentation figures, e.g. 512x512 on ADE20K)")
    size.add_argument("--input-size", type=int, nargs="+", metavar=("H", "W"),
                      help="synthetic images of H x W pixels (W defaults to H) instead of the test set's")
    parser.add_argument("--max-depth", type=int, default=3, help="module depth of the per-module tables")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pkl")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    """Run the tasks with command-line arguments ``argv`` (default ``sys.argv[1:]``).

    Returns:
        {task: the result of :func:`do_parameter` / :func:`do_flop`}.
    """
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.num_inputs < 1:
        parser.error(f"--num-inputs must be at least 1, got {args.num_inputs}")
    input_size = None
    if args.input_size is not None:
        if len(args.input_size) > 2 or min(args.input_size) < 1:
            parser.error(f"--input-size takes H [W], positive pixels; got {args.input_size}")
        input_size = (args.input_size[0], args.input_size[-1])
    setup_logger(name="fvcore")
    setup_logger(name="segcore")
    cfg = setup_cfg(args)
    if args.use_fixed_input_size:
        try:
            input_size = fixed_input_size(cfg)
        except ValueError as e:
            parser.error(str(e))
    results = {}
    for task in dict.fromkeys(args.tasks):
        if task == "parameter":
            results[task] = do_parameter(cfg, args.max_depth)
        else:
            results[task] = do_flop(cfg, args.num_inputs, args.max_depth, input_size)
    return results


if __name__ == "__main__":
    run_cli(main, prog="analyze_model.py")
