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
``{"model": {name: ndarray}, "__author__": "third_party", "matching_heuristics": True}``.
"""
from __future__ import annotations

import argparse
import logging
import pickle
from typing import Mapping

import torch

logger = logging.getLogger("convert-pretrained-swin-model-to-d2")


def convert_swin_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The ``"model"`` state dict of a Swin checkpoint -> Detectron2 ``.pkl`` content.

    Returns:
        dict: ``{"model": {name: ndarray}, "__author__": "third_party", "matching_heuristics": True}``.

    Raises:
        ValueError: a value is not a tensor.
    """
    model = {}
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"'{name}' holds a {type(value).__name__}, expected a tensor")
        model[name] = value.detach().cpu().numpy()
    return {"model": model, "__author__": "third_party", "matching_heuristics": True}


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``INPUT.pth OUTPUT.pkl``. Returns the written content.

    Raises:
        ValueError: the input has no ``"model"`` state dict.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="Swin checkpoint ({'model': state_dict, ...})")
    parser.add_argument("output", help="Detectron2 .pkl file to write")
    args = parser.parse_args(argv)
    obj = torch.load(args.input, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise ValueError(f"{args.input} has no 'model' state dict (expected an official Swin checkpoint)")
    res = convert_swin_state_dict(obj["model"])
    with open(args.output, "wb") as f:
        pickle.dump(res, f)
    logger.info(f"Wrote {len(res['model'])} weights to {args.output}")
    return res


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
