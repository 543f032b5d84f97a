#!/usr/bin/env python
"""Count a model's parameters and FLOPs (Detectron2's ``tools/analyze_model.py``).

Examples::

    python tools/analyze_model.py --config-file configs/ade20k-150/maskformer_R50_bs16_160k.yaml \\
        --tasks parameter
    python tools/analyze_model.py --config-file CONFIG --tasks flop --num-inputs 10 \\
        --opts MODEL.WEIGHTS model_final.pkl

FLOPs are counted by fvcore's ``FlopCountAnalysis`` on the model in eval mode, which, like
Detectron2, counts one fused multiply-add as one FLOP. They depend on the input size, so they
are measured on the first ``--num-inputs`` images of ``DATASETS.TEST[0]`` (mapped as at test
time, i.e. resized by ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``) when that dataset is
registered and its files are present; otherwise on synthetic random images of
``INPUT.MIN_SIZE_TEST`` x ``INPUT.MIN_SIZE_TEST`` pixels (512 if that is 0). The total is
averaged over the inputs; the per-module table is from the first input. Operators fvcore has no
formula for (e.g. softmax, elementwise ops) are not counted; they are listed once at the end.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from typing import Dict, List, Optional, Tuple

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fvcore.nn import FlopCountAnalysis, flop_count_table, parameter_count, parameter_count_table  # noqa: E402
from torch import nn  # noqa: E402

from segcore.engine import setup_cfg as setup_cfg_from_file  # noqa: E402
from segcore.modeling import build_model  # noqa: E402
from segcore.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("segcore.analyze_model")

TASKS = ("parameter", "flop")
#: Side (pixels) of the synthetic input when INPUT.MIN_SIZE_TEST is 0 (no test-time resize).
SYNTHETIC_SIZE_IF_NO_RESIZE = 512
_SYNTHETIC_SEED = 0


def setup_cfg(args: argparse.Namespace):
    """Frozen config: defaults, every installed model family's keys, the file, the overrides.

    ``MODEL.DEVICE`` falls back to ``cpu`` when CUDA is requested but unavailable.
    """
    return setup_cfg_from_file(args.config_file, args.opts)


def _output_tensors(obj) -> List[torch.Tensor]:
    """Every tensor inside a model output (dicts, lists, tuples, Instances, Boxes, BitMasks)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj) for t in _output_tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for x in obj for t in _output_tensors(x)]
    if hasattr(obj, "get_fields"):
        return _output_tensors(obj.get_fields())
    if isinstance(getattr(obj, "tensor", None), torch.Tensor):
        return [obj.tensor]
    return []


class ImageInputWrapper(nn.Module):
    """Presents a model taking ``list[dict]`` as a module taking one image tensor.

    ``forward(image)`` calls ``model([{"image": image, "height": height, "width": width}])`` and
    returns every tensor of the output as a tuple, which is what tracing-based counters
    (fvcore's ``FlopCountAnalysis``) need.

    Args:
        model: a segcore meta-architecture.
        height, width: output size in pixels passed with the image (the original image size).
    """

    def __init__(self, model: nn.Module, height: int, width: int):
        super().__init__()
        self.model = model
        self.height = int(height)
        self.width = int(width)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """image: (C, H, W) uint8 tensor in ``INPUT.FORMAT``."""
        outputs = self.model([{"image": image, "height": self.height, "width": self.width}])
        return tuple(_output_tensors(outputs))


def _dataset_inputs(cfg, num_inputs: int) -> Optional[List[dict]]:
    """Up to ``num_inputs`` mapped test inputs of DATASETS.TEST[0], or None if unavailable."""
    if not len(cfg.DATASETS.TEST):
        return None
    name = cfg.DATASETS.TEST[0]
    from segcore.data import DatasetCatalog, DatasetMapper

    try:
        dicts = DatasetCatalog.get(name)
    except (KeyError, FileNotFoundError, OSError) as e:
        logger.info(f"Test dataset {name} is not available ({e}); using synthetic inputs")
        return None
    dicts = [d for d in dicts[:num_inputs] if os.path.isfile(d.get("file_name", ""))]
    if not dicts:
        logger.info(f"Test dataset {name} has no image files on disk; using synthetic inputs")
        return None
    mapper = DatasetMapper(cfg, False)
    logger.info(f"Counting FLOPs on {len(dicts)} image(s) of {name}")
    return [mapper(d) for d in dicts]


def synthetic_inputs(cfg, num_inputs: int) -> List[dict]:
    """``num_inputs`` random uint8 images of INPUT.MIN_SIZE_TEST x INPUT.MIN_SIZE_TEST pixels
    (SYNTHETIC_SIZE_IF_NO_RESIZE if that is 0), as model input dicts."""
    size = int(cfg.INPUT.MIN_SIZE_TEST) or SYNTHETIC_SIZE_IF_NO_RESIZE
    g = torch.Generator().manual_seed(_SYNTHETIC_SEED)
    logger.info(f"Counting FLOPs on {num_inputs} synthetic {size}x{size} image(s)")
    return [
        {"image": torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g), "height": size, "width": size}
        for _ in range(num_inputs)
    ]


def _build_eval_model(cfg) -> nn.Module:
    from segcore.checkpoint import DetectionCheckpointer

    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model.eval()


def do_parameter(cfg, max_depth: int = 3) -> Dict[str, object]:
    """Parameter count of the model built from ``cfg``.

    Returns:
        {"total": number of parameter elements, "table": fvcore's per-module table (modules up
        to ``max_depth`` levels deep)}.
    """
    model = build_model(cfg)
    total = parameter_count(model)[""]
    table = parameter_count_table(model, max_depth=max_depth)
    logger.info(f"Parameter count: {total} ({total / 1e6:.2f} M)\n" + table)
    return {"total": int(total), "table": table}


def do_flop(cfg, num_inputs: int, max_depth: int = 3, inputs: Optional[List[dict]] = None) -> Dict[str, object]:
    """FLOPs of the model in eval mode, averaged over inputs (see the module docstring).

    Args:
        num_inputs: number of inputs to measure (>= 1).
        max_depth: depth of the per-module table.
        inputs: model input dicts to use instead of the dataset / synthetic ones.

    Returns:
        {"gflops": per-input GFLOPs, "mean_gflops", "std_gflops", "table": per-module table of
        the first input, "by_operator": mean GFLOPs per operator type, "unsupported_ops":
        {operator: count over all inputs}, "source": "dataset" or "synthetic"}.

    Raises:
        ValueError: ``num_inputs`` < 1.
    """
    if num_inputs < 1:
        raise ValueError(f"--num-inputs must be at least 1, got {num_inputs}")
    source = "given"
    if inputs is None:
        inputs = _dataset_inputs(cfg, num_inputs)
        source = "dataset"
        if inputs is None:
            inputs = synthetic_inputs(cfg, num_inputs)
            source = "synthetic"
    model = _build_eval_model(cfg)
    totals, by_operator, unsupported = [], Counter(), Counter()
    table = ""
    with torch.no_grad():
        for i, inp in enumerate(inputs):
            image = inp["image"]
            height, width = inp.get("height", image.shape[-2]), inp.get("width", image.shape[-1])
            wrapper = ImageInputWrapper(model, height, width).eval()
            flops = FlopCountAnalysis(wrapper, (image,))
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            totals.append(flops.total() / 1e9)
            by_operator.update(flops.by_operator())
            unsupported.update(flops.unsupported_ops())
            if i == 0:
                table = flop_count_table(flops, max_depth=max_depth)
    mean, std = float(np.mean(totals)), float(np.std(totals))
    per_op = {k: v / len(totals) / 1e9 for k, v in by_operator.most_common()}
    logger.info(f"FLOP table of the first input ({inputs[0]['image'].shape[-2]}x{inputs[0]['image'].shape[-1]}):\n" + table)
    logger.info("Average GFLOPs per operator type: " + ", ".join(f"{k}: {v:.3f}" for k, v in per_op.items()))
    logger.info(f"Total GFLOPs: {mean:.3f} ± {std:.3f} over {len(totals)} {source} input(s)")
    if unsupported:
        logger.warning(
            "Operators without a FLOP formula, not counted (occurrences over all inputs): "
            + ", ".join(f"{k} x{v}" for k, v in unsupported.most_common())
        )
    return {"gflops": totals, "mean_gflops": mean, "std_gflops": std, "table": table, "by_operator": per_op,
            "unsupported_ops": dict(unsupported), "source": source}


_TASK_FNS = {
    "parameter": lambda cfg, args: do_parameter(cfg, args.max_depth),
    "flop": lambda cfg, args: do_flop(cfg, args.num_inputs, args.max_depth),
}


def get_parser() -> argparse.ArgumentParser:
    """The tool's command line."""
    parser = argparse.ArgumentParser(
        description="Count a model's parameters and FLOPs.",
        epilog=__doc__.split("Examples::", 1)[1].split("FLOPs are", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="path to a config file")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="what to count (default: both)")
    parser.add_argument("-n", "--num-inputs", type=int, default=1,
                        help="number of inputs to average FLOPs over (FLOPs depend on the input size)")
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
    setup_logger(name="fvcore")
    setup_logger(name="segcore")
    cfg = setup_cfg(args)
    return {task: _TASK_FNS[task](cfg, args) for task in dict.fromkeys(args.tasks)}


if __name__ == "__main__":
    main()
