"""META_ARCH_REGISTRY, build_model and the outputs a configured model produces."""
from __future__ import annotations

from typing import FrozenSet, Optional

import torch
from fvcore.common.registry import Registry
from torch import nn

from segcore.layers import set_fused_attention
from segcore.utils.registry import get_registered

__all__ = ["META_ARCH_REGISTRY", "build_model", "model_output_tasks"]

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Registry for meta-architectures (whole models). A registered class is called as ``cls(cfg)``.
``MODEL.META_ARCHITECTURE`` picks one.
"""


def build_model(cfg) -> nn.Module:
    """Build the whole model named by ``cfg.MODEL.META_ARCHITECTURE`` on ``cfg.MODEL.DEVICE``.

    Weights are not loaded: use :class:`segcore.checkpoint.Checkpointer` for that. The model's
    attention layers use the fused kernels or the plain computation as ``MODEL.FUSED_ATTENTION``
    says (:func:`segcore.layers.set_fused_attention`).

    Raises:
        KeyError: the meta-architecture is not registered.
    """
    model = get_registered(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, "MODEL.META_ARCHITECTURE")(cfg)
    set_fused_attention(model, cfg.MODEL.FUSED_ATTENTION)
    model.to(torch.device(cfg.MODEL.DEVICE))
    return model


def model_output_tasks(cfg) -> Optional[FrozenSet[str]]:
    """The outputs that the model of ``cfg`` returns in eval mode, without building it.

    The meta-architecture declares them with a classmethod ``output_tasks(cfg)`` returning names
    among ``"sem_seg"``, ``"panoptic_seg"`` and ``"instances"`` (e.g. MaskFormer reads its test
    switches). Evaluator factories use this to choose the evaluators of a dataset.

    Returns:
        the set of task names, or None when the meta-architecture does not declare them (or is
        not registered).
    """
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in META_ARCH_REGISTRY:
        return None
    declare = getattr(META_ARCH_REGISTRY.get(name), "output_tasks", None)
    return frozenset(declare(cfg)) if callable(declare) else None
