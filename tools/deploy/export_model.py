#!/usr/bin/env python
"""Export a model to ONNX, to a ``torch.export`` program or to an AOTInductor package (Detectron2's
``tools/deploy/export_model.py``).

Examples::

    # ONNX for stock onnxruntime (no custom operator library), with the semantic inference in the graph
    python tools/deploy/export_model.py --config-file configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml \\
        --format onnx --postprocess semantic --output export/m2f_ade_R50 --opts MODEL.WEIGHTS model_final.pkl
    # a torch.export program (.pt2); deformable attention stays one mask2former.ms_deform_attn node
    python tools/deploy/export_model.py --config-file CONFIG --format pt2 --output DIR --opts MODEL.WEIGHTS W.pkl
    # that program compiled ahead of time for the CPU (model_aoti.pt2; needs a C++ compiler, minutes)
    python tools/deploy/export_model.py --config-file CONFIG --format aoti --output DIR --opts MODEL.WEIGHTS W.pkl

The folder receives ``model.onnx``, ``model.pt2`` or ``model_aoti.pt2`` and ``export_info.json`` (pre- and post-processing
settings, class names, inputs and outputs). The graph takes ``image``: float32 (1, 3, H, W) in 0..255
in the config's INPUT.FORMAT order, any H and W (normalization and padding are inside), and returns
``pred_logits`` (1, Q, K+1), ``pred_masks`` (1, Q, Hp/4, Wp/4) and, with ``--postprocess semantic``,
``sem_seg`` (K, H, W). ``--input-size`` is only the size of the example image traced and checked.
Run an export with ``segcore.export.ExportedPredictor(DIR)``, ``demo/demo.py --exported DIR``,
``tools/benchmark.py --exported DIR`` or, without torch, ``tools/deploy/onnx_semantic.py``; see
docs/deployment.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import List, Optional

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from segcore.engine import run_cli, setup_cfg  # noqa: E402
from segcore.export import EXPORT_FORMATS, POSTPROCESS_CHOICES, ExportInfo, export_from_config  # noqa: E402
from segcore.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("segcore.export_model")


def get_parser() -> argparse.ArgumentParser:
    """The tool's command line."""
    parser = argparse.ArgumentParser(description="Export a model to ONNX, torch.export (.pt2) or AOTInductor.",
                                     epilog=__doc__.split("Examples::", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="path to a config file")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="onnx (onnxruntime), pt2 (torch.export program) or aoti (AOTInductor package, CPU; "
                             "needs a C++ compiler)")
    parser.add_argument("--output", required=True, metavar="DIR", help="the export folder (created if missing)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="size of the example image traced and checked (default INPUT.MIN_SIZE_TEST square); "
                             "the exported file takes any size")
    parser.add_argument("--postprocess", choices=POSTPROCESS_CHOICES, default="none",
                        help="'semantic': the graph also computes the semantic scores sem_seg (K, H, W)")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pkl")
    return parser


def main(argv: Optional[List[str]] = None) -> ExportInfo:
    """Export with command-line arguments ``argv`` (default ``sys.argv[1:]``); returns the
    :class:`~segcore.export.ExportInfo` written."""
    args = get_parser().parse_args(argv)
    setup_logger(name="segcore")
    cfg = setup_cfg(args.config_file, args.opts)
    info = export_from_config(cfg, args.output, format=args.format, input_size=args.input_size,
                              postprocess=args.postprocess, config_file=args.config_file)
    path = os.path.join(args.output, info.model_file)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB) and {os.path.join(args.output, 'export_info.json')}")
    print(f"outputs: {', '.join(o['name'] + ' ' + json.dumps(o['shape']) for o in info.outputs)}")
    if info.check:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in info.check["max_abs_diff"].items())
        print(f"checked: the exported model ran on a {info.input['example_size'][0]}x{info.input['example_size'][1]} "
              f"image; largest differences from PyTorch: {diffs}")
    return info


if __name__ == "__main__":
    run_cli(main, prog="export_model.py")
