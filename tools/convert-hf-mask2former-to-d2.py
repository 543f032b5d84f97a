#!/usr/bin/env python
"""Convert Mask2Former weights between Hugging Face transformers and this project, both ways.

Usage::

    # Hugging Face folder (config.json + model.safetensors / pytorch_model.bin, as save_pretrained
    # writes it) -> a Detectron2 .pkl (or .pth) + a config whose _BASE_ is one of ours
    python tools/convert-hf-mask2former-to-d2.py hf-to-d2 path/to/hf_folder m2f.pkl \\
        [--base-config configs/ade20k/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_160k.yaml] \\
        [--config-out m2f.yaml]
    python demo/demo.py --config-file m2f.yaml --input image.jpg

    # our checkpoint + its config -> a folder that Mask2FormerForUniversalSegmentation.from_pretrained loads
    python tools/convert-hf-mask2former-to-d2.py d2-to-hf model_final.pth out_folder \\
        --config-file configs/coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml [--opts KEY VALUE ...]

Supported backbones: Swin (the Hugging Face default, ``SwinBackbone``) <-> ``D2SwinTransformer``,
and ResNet (``ResNetConfig`` through ``AutoBackbone``; not timm) <-> ``build_resnet_backbone``.
The name rules, the numeric conventions both sides share and what each direction checks are
described in :mod:`mask2former.convert`, which does the work (:func:`convert_hf_folder_to_d2`,
:func:`convert_d2_to_hf_folder`); this file parses the command line and prints the outcome.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from typing import List, Optional

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mask2former.convert import DEFAULT_BASE_CONFIGS, convert_d2_to_hf_folder, convert_hf_folder_to_d2  # noqa: E402


def _command_line_value(value) -> str:
    """A config value as the ``--opts`` / ``KEY VALUE`` command-line form writes it."""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, list) else repr(value)


def _hf_to_d2(args) -> dict:
    result = convert_hf_folder_to_d2(args.input, args.output, hf_config=args.hf_config, base_config=args.base_config,
                                     config_out=args.config_out, check=not args.no_check)
    print(f"Wrote {len(result.state_dict)} weights to {args.output} and the config {result.config} "
          f"(_BASE_ {result.base_config}).")
    print("Config overrides (command-line form, e.g. for train_net.py / demo.py --opts):")
    for key, value in result.overrides.items():
        print(f"  {key} {shlex.quote(_command_line_value(value))}")
    if result.dropped:
        print("Dropped (not used by Mask2Former): " + ", ".join(result.dropped))
    for note in result.notes:
        print("Note: " + note)
    return result._asdict()


def _d2_to_hf(args) -> dict:
    result = convert_d2_to_hf_folder(args.input, args.output, config_file=args.config_file, opts=args.opts)
    for note in result.notes:
        print("Note: " + note)
    print(f"Wrote a Hugging Face Mask2Former ({result.backbone_type} backbone, {len(result.state_dict)} entries) to "
          f"{args.output}{' (first convolution flipped to read RGB)' if result.flipped_to_rgb else ''}.")
    return result._asdict()


def main(argv: Optional[List[str]] = None) -> dict:
    """Command line (see the module docstring). Returns what was written (for tests): the fields of
    :class:`mask2former.convert.HFToD2Result` or :class:`mask2former.convert.D2ToHFResult` as a dict.

    Raises:
        FileNotFoundError, ValueError, UnsupportedModelError: see
            :func:`mask2former.convert.convert_hf_folder_to_d2` and
            :func:`mask2former.convert.convert_d2_to_hf_folder`.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="direction", required=True)
    h = sub.add_parser("hf-to-d2", help="Hugging Face folder -> Detectron2 .pkl/.pth + our YAML config")
    h.add_argument("input", help="HF folder (config.json + weights) or weight file")
    h.add_argument("output", help="our weights to write: .pkl (Detectron2) or .pth")
    h.add_argument("--hf-config", help="HF config.json (default: next to the weights)")
    h.add_argument("--base-config", help="our config to inherit (_BASE_); default by backbone: "
                   + ", ".join(f"{k}: {v}" for k, v in DEFAULT_BASE_CONFIGS.items()))
    h.add_argument("--config-out", help="YAML to write (default: the output with .yaml)")
    h.add_argument("--no-check", action="store_true",
                   help="do not build our model from the written config to check every name and shape")
    d = sub.add_parser("d2-to-hf", help="our checkpoint + config -> Hugging Face folder")
    d.add_argument("input", help="our checkpoint (.pth / .pkl, as Checkpointer loads)")
    d.add_argument("output", help="folder to write (config.json, model.safetensors, preprocessor_config.json)")
    d.add_argument("--config-file", required=True, help="our config of the checkpoint")
    d.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                   help="config overrides KEY VALUE ... (last on the command line)")
    args = parser.parse_args(argv)
    if args.direction == "hf-to-d2":
        return _hf_to_d2(args)
    return _d2_to_hf(args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # RuntimeError: a checkpoint that does not fit
        sys.exit(f"error: {e}")
