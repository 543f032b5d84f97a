#!/usr/bin/env python
"""Convert an official Swin Transformer ImageNet checkpoint to a Detectron2 ``.pkl`` (as
MaskFormer's / Mask2Former's tool of this name).

Usage::

    # e.g. swin_tiny_patch4_window7_224.pth from the Swin Transformer releases
    python tools/convert-pretrained-swin-model-to-d2.py swin_tiny_patch4_window7_224.pth swin_tiny_patch4_window7_224.pkl
    # then: MODEL.WEIGHTS swin_tiny_patch4_window7_224.pkl  INPUT.FORMAT RGB

Names are kept (``patch_embed.proj.weight``, ``layers.0.blocks.0.attn.qkv.weight``, ...); the
file asks for name matching, which loads them into ``backbone.*`` of the segmentation model and
reports the classifier (``norm.*``, ``head.*``) as unused. The output is
``{"model": {name: ndarray}, "__author__": "third_party", "matching_heuristics": True}``
(:mod:`mask_former.convert.swin_imagenet`).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mask_former.convert import AUTHOR, load_swin_imagenet_state_dict  # noqa: E402
from segcore.convert import write_d2_checkpoint  # noqa: E402

logger = logging.getLogger("convert-pretrained-swin-model-to-d2")


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``INPUT.pth OUTPUT.pkl``. Returns the written content.

    Raises:
        ValueError: the input has no ``"model"`` state dict, or a value is not a tensor.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="Swin checkpoint ({'model': state_dict, ...})")
    parser.add_argument("output", help="Detectron2 .pkl file to write")
    args = parser.parse_args(argv)
    content = write_d2_checkpoint(load_swin_imagenet_state_dict(args.input), args.output, author=AUTHOR,
                                  matching_heuristics=True)
    logger.info(f"Wrote {len(content['model'])} weights to {args.output}")
    return content


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
