"""META_ARCH_REGISTRY and build_model."""
from __future__ import annotations

import torch
from fvcore.common.registry import Registry
from torch import nn

from ..backbone.build import _get

__all__ = ["META_ARCH_REGISTRY", "build_model"]

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Registry for meta-architectures (whole models). A registered class is called as ``cls(cfg)``.
``MODEL.META_ARCHITECTURE`` picks one.
"""


def build_model(cfg) -> nn.Module:
    """Build the whole model named by ``cfg.MODEL.META_ARCHITECTURE`` on ``cfg.MODEL.DEVICE``.

    Weights are not loaded: use :class:`segcore.checkpoint.Checkpointer` for that.

    Raises:
        KeyError: the meta-architecture is not registered.
    """
    model = _get(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, "MODEL.META_ARCHITECTURE")(cfg)
    model.to(torch.device(cfg.MODEL.DEVICE))
    return model
