"""Reading a Hugging Face Mask2Former checkpoint as ``save_pretrained`` writes it: ``config.json``,
the weights (``model.safetensors``, ``pytorch_model.bin`` or a sharded checkpoint's index), and
``preprocessor_config.json`` when present."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

import torch

__all__ = ["WEIGHT_FILES", "load_hf_checkpoint", "read_hf_weight_file"]

#: the weight files of a folder, in the order they are looked for
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def read_hf_weight_file(path: str) -> Dict[str, torch.Tensor]:
    """The entries of a weight file: ``*.safetensors``, a sharded checkpoint's ``*.index.json``
    (every shard it names, from its folder), or a ``torch.save`` state dict (``weights_only``).

    Raises:
        ValueError: a ``torch.save`` file that does not hold a state dict of tensors.
    """
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    if path.endswith(".index.json"):
        with open(path) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: Dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(read_hf_weight_file(os.path.join(os.path.dirname(path), shard)))
        return state
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def load_hf_checkpoint(path: str, config_path: Optional[str] = None):
    """Read a Hugging Face Mask2Former checkpoint as ``save_pretrained`` writes it.

    Args:
        path: the folder, or one weight file (``model.safetensors``, ``pytorch_model.bin``, or a
            sharded checkpoint's ``*.index.json``).
        config_path: ``config.json`` (default: the one next to the weights).

    Returns:
        ``(state, config, preprocessor)``: the file's entries {name: tensor} as stored, the
        ``transformers.Mask2FormerConfig`` and the ``preprocessor_config.json`` dict (None if absent).

    Raises:
        FileNotFoundError: no weight file or no config.json.
        ValueError: the config is not a Mask2Former config.
    """
    from transformers import Mask2FormerConfig

    if os.path.isdir(path):
        found = [os.path.join(path, n) for n in WEIGHT_FILES if os.path.isfile(os.path.join(path, n))]
        if not found:
            raise FileNotFoundError(f"{path} holds none of {list(WEIGHT_FILES)}")
        weights, folder = found[0], path
    elif os.path.isfile(path):
        weights, folder = path, os.path.dirname(os.path.abspath(path))
    else:
        raise FileNotFoundError(f"No Hugging Face checkpoint at {path}")
    config_path = config_path or os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"No config.json at {config_path} (pass --hf-config)")
    with open(config_path) as f:
        model_type = json.load(f).get("model_type")
    if model_type != "mask2former":
        raise ValueError(f"{config_path} describes a '{model_type}' model, not 'mask2former'")
    config = Mask2FormerConfig.from_pretrained(config_path)
    preprocessor = None
    pre_path = os.path.join(folder, "preprocessor_config.json")
    if os.path.isfile(pre_path):
        with open(pre_path) as f:
            preprocessor = json.load(f)
    return read_hf_weight_file(weights), config, preprocessor
