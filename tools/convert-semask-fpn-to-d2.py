#!/usr/bin/env python
"""Convert a released SeMask-FPN checkpoint (mmsegmentation 0.x) to this project's weights.

Usage::

    # e.g. the SeMask-T FPN ADE20K checkpoint of Picsart-AI-Research/SeMask-Segmentation (Google Drive)
    python tools/convert-semask-fpn-to-d2.py semask_tiny_fpn_ade20k.pth semask_fpn_swin_tiny_ade20k.pkl \\
        [--config-file configs/ade20k-150/semask_fpn/semfpn_semask_swin_tiny_bs16_80k.yaml]
    python train_net.py --config-file configs/ade20k-150/semask_fpn/semfpn_semask_swin_tiny_bs16_80k.yaml \\
        --eval-only MODEL.WEIGHTS semask_fpn_swin_tiny_ade20k.pkl

The input is what mmcv's ``save_checkpoint`` writes: ``{"state_dict": {name: tensor}, "meta": ...,
"optimizer": ...}``; only ``state_dict`` is read. The output is a Detectron2 ``.pkl``
(``{"model": {name: ndarray}, "__author__": ..., "matching_heuristics": False}``) or, for a
``.pth`` name, the same dict with tensors; the names are exact, so ``Checkpointer`` loads them
without name matching (and ``strict=True`` loads succeed). The name rules are
:mod:`semask.convert.semask_fpn`'s; any entry they do not map is refused (the error names every one).
``--config-file`` also builds our model from the config (no weights loaded) and checks that the
converted names and shapes are exactly its state dict's.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from segcore.convert import build_model_of_config, check_names_and_shapes, write_d2_checkpoint  # noqa: E402
from semask.convert import AUTHOR, convert_semask_fpn_state_dict, load_mmseg_state_dict  # noqa: E402

logger = logging.getLogger("convert-semask-fpn-to-d2")


def main(argv: Optional[List[str]] = None) -> dict:
    """Command line (see the module docstring). Returns the written dict.

    Raises:
        FileNotFoundError, ValueError: see :func:`semask.convert.load_mmseg_state_dict`,
            :func:`semask.convert.convert_semask_fpn_state_dict`,
            :func:`segcore.convert.check_names_and_shapes`, :func:`segcore.convert.write_d2_checkpoint`.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="SeMask-FPN checkpoint (mmsegmentation .pth with 'state_dict')")
    parser.add_argument("output", help="file to write: .pkl (Detectron2) or .pth")
    parser.add_argument("--config-file", help="our config of the model: check every converted name and shape")
    parser.add_argument("--trust-file", action="store_true",
                        help="load the input with full unpickling (only for trusted files the safe loader refuses)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                        help="overrides KEY VALUE ... of --config-file (last on the command line)")
    args = parser.parse_args(argv)
    weights = convert_semask_fpn_state_dict(load_mmseg_state_dict(args.input, trust_file=args.trust_file))
    if args.config_file:
        _, model = build_model_of_config(args.config_file, args.opts)
        check_names_and_shapes(weights, model.state_dict())
    content = write_d2_checkpoint(weights, args.output, author=AUTHOR, matching_heuristics=False)
    logger.info(f"Wrote {len(content['model'])} weights to {args.output}")
    return content


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
