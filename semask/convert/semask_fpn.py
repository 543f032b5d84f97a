"""A released SeMask-FPN checkpoint (mmsegmentation 0.x) -> this project's names.

The input is what mmcv's ``save_checkpoint`` writes: ``{"state_dict": {name: tensor}, "meta": ...,
"optimizer": ...}``; only ``state_dict`` is read. The names become exactly ours, so the converted
file is written with ``"matching_heuristics": False`` and loads strictly.

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
names every unmapped key.
"""
from __future__ import annotations

import os
import pickle
import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

__all__ = ["AUTHOR", "NAME_RULES", "convert_semask_fpn_state_dict", "load_mmseg_state_dict", "map_name"]

#: written into the output's ``__author__``
AUTHOR = "SeMask-FPN (mmsegmentation; tools/convert-semask-fpn-to-d2.py)"
#: our name of the scale head of stage i: the backbone feature it reads (stage 0 is ``res2``)
_FIRST_RES = 2


def _scale_head(match: re.Match) -> str:
    stage, index, module, attr = match.groups()
    norm = ".norm" if module == "bn" else ""
    return f"sem_seg_head.res{int(stage) + _FIRST_RES}.{index}{norm}.{attr}"


#: (regular expression matching a whole release name, our name as a function of the match)
NAME_RULES: List[Tuple[str, Callable[[re.Match], str]]] = [
    (r"backbone\.(.+)", lambda m: f"backbone.{m.group(1)}"),
    (r"decode_head\.scale_heads\.(\d+)\.(\d+)\.(conv)\.(weight|bias)", _scale_head),
    (r"decode_head\.scale_heads\.(\d+)\.(\d+)\.(bn)\.(weight|bias|running_mean|running_var|num_batches_tracked)",
     _scale_head),
    (r"decode_head\.conv_seg\.(weight|bias)", lambda m: f"sem_seg_head.predictor.{m.group(1)}"),
]


def map_name(name: str) -> Optional[str]:
    """Our name of the release's entry ``name`` (by the first rule of :data:`NAME_RULES` that
    matches it whole), or None when no rule maps it."""
    for pattern, ours in NAME_RULES:
        match = re.fullmatch(pattern, name)
        if match:
            return ours(match)
    return None


def convert_semask_fpn_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename the release's state dict to ours (values unchanged, on the CPU).

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
