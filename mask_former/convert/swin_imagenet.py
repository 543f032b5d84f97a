"""The official Swin Transformer ImageNet checkpoints (``swin_tiny_patch4_window7_224.pth`` and the
others of the Swin releases), as MaskFormer's / Mask2Former's ``convert-pretrained-swin-model-to-d2.py``
reads them.

The names are those of :class:`mask_former.modeling.backbone.swin.D2SwinTransformer`
(``patch_embed.proj.weight``, ``layers.0.blocks.0.attn.qkv.weight``, ...) without the model's
``backbone.`` prefix, so they are kept and written with ``"matching_heuristics": True``: the
checkpointer's name matching loads them into ``backbone.*`` and reports the classifier (``norm.*``,
``head.*``) and the classification code's ``attn_mask`` buffers as unused.
"""
from __future__ import annotations

from typing import Dict

import torch

__all__ = ["AUTHOR", "load_swin_imagenet_state_dict"]

#: the ``__author__`` of the converted file (Detectron2's value for third-party weights)
AUTHOR = "third_party"


def load_swin_imagenet_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The ``"model"`` state dict of an official Swin checkpoint (``{"model": state_dict, ...}``),
    loaded with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: the file has no ``"model"`` dict (the message names the file).
    """
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise ValueError(f"{path} has no 'model' state dict (expected an official Swin checkpoint)")
    return obj["model"]
