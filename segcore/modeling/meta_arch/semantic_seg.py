"""SEM_SEG_HEADS_REGISTRY and build_sem_seg_head."""
from __future__ import annotations

from typing import Dict

from fvcore.common.registry import Registry
from torch import nn

from segcore.layers import ShapeSpec

from ..backbone.build import _get

__all__ = ["SEM_SEG_HEADS_REGISTRY", "build_sem_seg_head"]

SEM_SEG_HEADS_REGISTRY = Registry("SEM_SEG_HEADS")
SEM_SEG_HEADS_REGISTRY.__doc__ = """
Registry for segmentation heads, which take backbone features and produce predictions.
A registered class is called as ``cls(cfg, input_shape)`` with ``input_shape`` the backbone's
``{name: ShapeSpec}``. ``MODEL.SEM_SEG_HEAD.NAME`` picks one.
"""


def build_sem_seg_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the head named by ``cfg.MODEL.SEM_SEG_HEAD.NAME``.

    Raises:
        KeyError: the name is not registered.
    """
    return _get(SEM_SEG_HEADS_REGISTRY, cfg.MODEL.SEM_SEG_HEAD.NAME, "MODEL.SEM_SEG_HEAD.NAME")(cfg, input_shape)
