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
without name matching (and ``strict=True`` loads succeed).

Name rules (the release's ``EncoderDecoder`` with ``SeMaskSwinTransformer`` and ``BranchFPNHead``
-> our ``SemanticSegmentor`` with ``SeMaskSwinTransformer`` and ``BranchFPNHead``):

* ``backbone.<rest>`` -> ``backbone.<rest>``: the SeMask Swin names are the same on both sides
  (``patch_embed.*``, ``layers.{i}.blocks.{j}.*``, ``layers.{i}.semantic_layer.*``,
  ``layers.{i}.downsample.*``, ``norm{i}.*``, and the ``relative_position_index`` buffers);
* ``decode_head.scale_heads.{i}.{j}.conv.{weight,bias}`` -> ``sem_seg_head.res{i+2}.{j}.{weight,bias}``:
  the scale head of stage i is named after its feature (``res2`` .. ``res5``); index j is kept
  (the odd indices are parameter-free upsamplings on both sides), and our conv carries its norm;
* ``decode_head.scale_heads.{i}.{j}.bn.<attr>`` -> ``sem_seg_head.res{i+2}.{j}.norm.<attr>``
  (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``);
* ``decode_head.conv_seg.{weight,bias}`` -> ``sem_seg_head.predictor.{weight,bias}`` (the classifier).

Any other entry (e.g. an FPN neck or an auxiliary head of another model) is refused: the error
names every unmapped key. ``--config-file`` also builds our model from the config (no weights
loaded) and checks that the converted names and shapes are exactly its state dict's.
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import re
import sys
from typing import Callable, Dict, List, Mapping, Optional, Tuple

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402

logger = logging.getLogger("convert-semask-fpn-to-d2")

__all__ = ["AUTHOR", "NAME_RULES", "check_against_model", "convert_semask_fpn_state_dict", "load_mmseg_state_dict",
           "main", "map_name", "write_checkpoint"]

#: written into the output's ``__author__``
AUTHOR = "SeMask-FPN (mmsegmentation; tools/convert-semask-fpn-to-d2.py)"
#: our name of the scale head of stage i: the backbone feature it reads (stage 0 is ``res2``)
_FIRST_RES = 2


def _scale_head(match: re.Match) -> str:
    stage, index, module, attr = match.groups()
    norm = ".norm" if module == "bn" else ""
    return f"sem_seg_head.res{int(stage) + _FIRST_RES}.{index}{norm}.{attr}"


#: (regular expression matching a whole release name, our name as a template or a function of the match)
NAME_RULES: List[Tuple[str, Callable[[re.Match], str]]] = [
    (r"backbone\.(.+)", lambda m: f"backbone.{m.group(1)}"),
    (r"decode_head\.scale_heads\.(\d+)\.(\d+)\.(conv)\.(weight|bias)", _scale_head),
    (r"decode_head\.scale_heads\.(\d+)\.(\d+)\.(bn)\.(weight|bias|running_mean|running_var|num_batches_tracked)",
     _scale_head),
    (r"decode_head\.conv_seg\.(weight|bias)", lambda m: f"sem_seg_head.predictor.{m.group(1)}"),
]


def map_name(name: str) -> Optional[str]:
    """Our name of the release's entry ``name``, or None when no rule maps it."""
    for pattern, ours in NAME_RULES:
        match = re.fullmatch(pattern, name)
        if match:
            return ours(match)
    return None


def convert_semask_fpn_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename the release's state dict to ours (values unchanged).

    Args:
        state_dict: the checkpoint's ``state_dict`` (release names -> tensors).

    Returns:
        {our name: tensor}, in the input's order.

    Raises:
        ValueError: entries that no rule maps (all of them are named), or a value that is not a tensor.
    """
    unmapped = sorted(k for k in state_dict if map_name(k) is None)
    if unmapped:
        raise ValueError(f"{len(unmapped)} entries of the checkpoint have no SeMask-FPN counterpart (is it a "
                         f"SeMask-FPN model?): {unmapped}")
    converted: Dict[str, torch.Tensor] = {}
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"'{name}' holds a {type(value).__name__}, expected a tensor")
        converted[map_name(name)] = value.detach().cpu()
    return converted


def load_mmseg_state_dict(path: str, *, trust_file: bool = False) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of an mmcv checkpoint file.

    Args:
        path: the ``.pth`` file.
        trust_file: unpickle any object (``torch.load(weights_only=False)``): only for files from a
            trusted source whose metadata the safe loader refuses.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file has no ``state_dict``, or holds objects the safe loader refuses.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_file)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds objects other than tensors and plain Python values ({e}); if the file "
                         "comes from a source you trust, run again with --trust-file") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        keys = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path} has no 'state_dict' (an mmsegmentation checkpoint has one); found {keys}")
    return obj["state_dict"]


def write_checkpoint(weights: Mapping[str, torch.Tensor], path: str) -> dict:
    """Write ``weights`` (our names) as a Detectron2 ``.pkl`` (ndarrays) or a ``.pth`` (tensors).

    Returns:
        the written dict.

    Raises:
        ValueError: ``path`` ends neither with ``.pkl`` nor ``.pth``.
    """
    if path.endswith(".pkl"):
        content = {"model": {k: v.numpy() for k, v in weights.items()}, "__author__": AUTHOR,
                   "matching_heuristics": False}
        with open(path, "wb") as f:
            pickle.dump(content, f)
    elif path.endswith(".pth"):
        content = {"model": dict(weights), "__author__": AUTHOR, "matching_heuristics": False}
        torch.save(content, path)
    else:
        raise ValueError(f"Output {path}: use a .pkl (Detectron2) or .pth file name")
    return content


def check_against_model(weights: Mapping[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Check that ``weights`` has exactly ``model``'s state-dict names and shapes.

    Raises:
        ValueError: names missing from either side or shapes that differ (all listed).
    """
    ours = model.state_dict()
    problems = []
    missing = sorted(set(ours) - set(weights))
    extra = sorted(set(weights) - set(ours))
    if missing:
        problems.append(f"not in the checkpoint: {missing}")
    if extra:
        problems.append(f"not in the model: {extra}")
    shapes = [f"{k}: {tuple(weights[k].shape)} vs ours {tuple(ours[k].shape)}" for k in sorted(set(ours) & set(weights))
              if tuple(weights[k].shape) != tuple(ours[k].shape)]
    if shapes:
        problems.append(f"shapes differ: {shapes}")
    if problems:
        raise ValueError("The converted weights do not fit the model of the config:\n  " + "\n  ".join(problems))


def _build_model(config_file: str, opts: List[str]) -> torch.nn.Module:
    from segcore.engine import setup_cfg
    from segcore.modeling import build_model

    cfg = setup_cfg(config_file, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", *opts])
    return build_model(cfg)


def main(argv: Optional[List[str]] = None) -> dict:
    """Command line (see the module docstring). Returns the written dict.

    Raises:
        FileNotFoundError, ValueError: see :func:`load_mmseg_state_dict`,
            :func:`convert_semask_fpn_state_dict`, :func:`write_checkpoint`, :func:`check_against_model`.
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
        check_against_model(weights, _build_model(args.config_file, args.opts))
    content = write_checkpoint(weights, args.output)
    logger.info(f"Wrote {len(content['model'])} weights to {args.output}")
    return content


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
