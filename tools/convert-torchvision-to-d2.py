#!/usr/bin/env python
"""Convert a torchvision ResNet checkpoint to a Detectron2 ``.pkl`` (as Detectron2's tool of this name).

Usage::

    # torchvision's ImageNet weights, e.g. resnet50-0676ba61.pth
    python tools/convert-torchvision-to-d2.py resnet50-0676ba61.pth R-50.pkl
    # then: MODEL.WEIGHTS R-50.pkl  MODEL.PIXEL_MEAN [123.675,116.280,103.530]
    #       MODEL.PIXEL_STD [58.395,57.120,57.375]  INPUT.FORMAT RGB  MODEL.RESNETS.STRIDE_IN_1X1 False

Renaming (torchvision -> Detectron2): ``conv1`` / ``bn1`` -> ``stem.conv1`` / ``stem.conv1.norm``;
``layer{1..4}`` -> ``res{2..5}``; ``bn{1,2,3}`` -> ``conv{1,2,3}.norm``; ``downsample.0`` /
``downsample.1`` -> ``shortcut`` / ``shortcut.norm``. The classifier ``fc.*`` and BatchNorm
``num_batches_tracked`` counters are dropped. The output is
``{"model": {name: ndarray}, "__author__": "torchvision", "matching_heuristics": True}``.
"""
from __future__ import annotations

import argparse
import logging
import pickle
import re
from typing import Mapping

import torch

logger = logging.getLogger("convert-torchvision-to-d2")

_RULES = (
    (r"^layer([1-4])\.", lambda m: f"res{int(m.group(1)) + 1}."),
    (r"\.bn([1-3])\.", lambda m: f".conv{m.group(1)}.norm."),
    (r"\.downsample\.0\.", ".shortcut."),
    (r"\.downsample\.1\.", ".shortcut.norm."),
    (r"^conv1\.", "stem.conv1."),
    (r"^bn1\.", "stem.conv1.norm."),
)


def convert_torchvision_name(name: str) -> str:
    """One torchvision ResNet name -> its Detectron2 name (``layer1.0.bn1.weight`` ->
    ``res2.0.conv1.norm.weight``).

    Raises:
        ValueError: the name is not part of a torchvision ResNet backbone.
    """
    new = name
    for pattern, repl in _RULES:
        new = re.sub(pattern, repl, new)
    if not (new.startswith("stem.") or re.match(r"^res[2-5]\.", new)):
        raise ValueError(f"'{name}' is not a torchvision ResNet backbone weight")
    return new


def convert_torchvision_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """A torchvision ResNet state dict -> Detectron2 ``.pkl`` content.

    Args:
        state_dict: torchvision names -> tensors (``fc.*`` and ``*.num_batches_tracked`` are
            dropped).

    Returns:
        dict: ``{"model": {d2 name: float ndarray}, "__author__": "torchvision",
        "matching_heuristics": True}``.

    Raises:
        ValueError: a key is not a ResNet weight, or a value is not a tensor.
    """
    model = {}
    for name, value in state_dict.items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            logger.info(f"Dropping {name}")
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"'{name}' holds a {type(value).__name__}, expected a tensor")
        new = convert_torchvision_name(name)
        logger.info(f"{name} -> {new}")
        model[new] = value.detach().cpu().numpy()
    return {"model": model, "__author__": "torchvision", "matching_heuristics": True}


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``INPUT.pth OUTPUT.pkl``. Returns the written content."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="torchvision ResNet checkpoint (.pth state dict)")
    parser.add_argument("output", help="Detectron2 .pkl file to write")
    args = parser.parse_args(argv)
    obj = torch.load(args.input, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{args.input} holds a {type(obj).__name__}, expected a state dict")
    res = convert_torchvision_state_dict(obj)
    with open(args.output, "wb") as f:
        pickle.dump(res, f)
    logger.info(f"Wrote {len(res['model'])} weights to {args.output}")
    return res


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
