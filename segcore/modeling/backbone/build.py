"""BACKBONE_REGISTRY and build_backbone."""
from __future__ import annotations

from typing import Optional

from fvcore.common.registry import Registry

from segcore.layers import ShapeSpec
from segcore.utils.registry import get_registered

from .backbone import Backbone

__all__ = ["BACKBONE_REGISTRY", "build_backbone"]

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Registry for backbones. A registered object is called as ``obj(cfg, input_shape)`` and returns a
:class:`Backbone`. ``MODEL.BACKBONE.NAME`` picks one.
"""


def build_backbone(cfg, input_shape: Optional[ShapeSpec] = None) -> Backbone:
    """Build the backbone named by ``cfg.MODEL.BACKBONE.NAME``.

    Args:
        cfg: the config.
        input_shape: shape of the input image; defaults to ``len(cfg.MODEL.PIXEL_MEAN)`` channels.

    Raises:
        KeyError: the name is not registered (the message lists the registered names).
        TypeError: the builder did not return a Backbone.
    """
    if input_shape is None:
        input_shape = ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))
    name = cfg.MODEL.BACKBONE.NAME
    backbone = get_registered(BACKBONE_REGISTRY, name, "MODEL.BACKBONE.NAME")(cfg, input_shape)
    if not isinstance(backbone, Backbone):
        raise TypeError(f"Backbone builder '{name}' returned {type(backbone).__name__}, not a Backbone")
    return backbone

