#!/usr/bin/env python
"""Convert a torchvision ResNet checkpoint to a Detectron2 ``.pkl`` (as Detectron2's tool of this name).

Usage::

    # torchvision's ImageNet weights, e.g. resnet50-0676ba61.pth
    python tools/convert-torchvision-to-d2.py resnet50-0676ba61.pth R-50.pkl
    # then: MODEL.WEIGHTS R-50.pkl  MODEL.PIXEL_MEAN [123.675,116.280,103.530]
    #       MODEL.PIXEL_STD [58.395,57.120,57.375]  INPUT.FORMAT RGB  MODEL.RESNETS.STRIDE_IN_1X1 False

Renaming (torchvision -> Detectron2, :mod:`segcore.convert.torchvision_resnet`): ``conv1`` / ``bn1``
-> ``stem.conv1`` / ``stem.conv1.norm``; ``layer{1..4}`` -> ``res{2..5}``; ``bn{1,2,3}`` ->
``conv{1,2,3}.norm``; ``downsample.0`` / ``downsample.1`` -> ``shortcut`` / ``shortcut.norm``. The
classifier ``fc.*`` and BatchNorm ``num_batches_tracked`` counters are dropped. The output is
``{"model": {name: ndarray}, "__author__": "torchvision", "matching_heuristics": True}``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from segcore.convert import torchvision_resnet, write_d2_checkpoint  # noqa: E402

logger = logging.getLogger("convert-torchvision-to-d2")


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``INPUT.pth OUTPUT.pkl``. Returns the written content.

    Raises:
        ValueError: the input is not a ResNet state dict (the first name that is not is given).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="torchvision ResNet checkpoint (.pth state dict)")
    parser.add_argument("output", help="Detectron2 .pkl file to write")
    args = parser.parse_args(argv)
    state_dict = torchvision_resnet.load_torchvision_state_dict(args.input)
    weights = torchvision_resnet.convert_torchvision_state_dict(state_dict)
    content = write_d2_checkpoint(weights, args.output, author=torchvision_resnet.AUTHOR, matching_heuristics=True)
    logger.info(f"Wrote {len(content['model'])} weights to {args.output}")
    return content


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
