"""torchvision ResNet checkpoints -> this project's ResNet names (as Detectron2's
``tools/convert-torchvision-to-d2.py``).

Renaming (torchvision -> Detectron2): ``conv1`` / ``bn1`` -> ``stem.conv1`` / ``stem.conv1.norm``;
``layer{1..4}`` -> ``res{2..5}``; ``bn{1,2,3}`` -> ``conv{1,2,3}.norm``; ``downsample.0`` /
``downsample.1`` -> ``shortcut`` / ``shortcut.norm``. The classifier ``fc.*`` and BatchNorm
``num_batches_tracked`` counters are dropped. torchvision puts the stride in the 3x3 convolution
(``MODEL.RESNETS.STRIDE_IN_1X1 False``) and normalizes RGB images with the ImageNet mean / std.
"""
from __future__ import annotations

import logging
import re
from typing import Dict, Mapping

import torch

__all__ = ["AUTHOR", "convert_torchvision_name", "convert_torchvision_state_dict", "load_torchvision_state_dict"]

logger = logging.getLogger(__name__)

#: the ``__author__`` of the converted file
AUTHOR = "torchvision"

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


def convert_torchvision_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename a torchvision ResNet state dict to Detectron2's names (values unchanged).

    Args:
        state_dict: torchvision names -> tensors (``fc.*`` and ``*.num_batches_tracked`` are
            dropped, each logged at INFO).

    Returns:
        {Detectron2 name: tensor}, in the input's order.

    Raises:
        ValueError: a key is not a ResNet weight, or a value is not a tensor.
    """
    weights = {}
    for name, value in state_dict.items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            logger.info(f"Dropping {name}")
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"'{name}' holds a {type(value).__name__}, expected a tensor")
        new = convert_torchvision_name(name)
        logger.info(f"{name} -> {new}")
        weights[new] = value
    return weights


def load_torchvision_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of a torchvision checkpoint file: the file's dict itself, or its
    ``"state_dict"`` entry when it has one. Loaded with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: the file holds something other than a dict.
    """
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, expected a state dict")
    return obj
