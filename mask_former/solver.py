"""MaskFormer's optimizer parameter groups (the original ``train_net.py`` ``build_optimizer``)."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from torch import nn

from segcore.solver import NORM_MODULE_TYPES, iter_trainable_parameters

__all__ = ["POSITION_EMBEDDING_PARAM_NAMES", "get_mask_former_param_groups", "mask_former_param_groups_from_config"]

#: Parameter names (substrings) of Swin's position tables, never weight-decayed in the originals.
POSITION_EMBEDDING_PARAM_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def get_mask_former_param_groups(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    weight_decay_embed: float,
    backbone_multiplier: float,
    norm_module_types: Tuple[type, ...] = NORM_MODULE_TYPES,
) -> List[Dict[str, Any]]:
    """One optimizer parameter group per trainable parameter, as the MaskFormer ``train_net.py``.

    Args:
        model: the model; frozen parameters are left out, shared ones appear once.
        base_lr: learning rate of every parameter outside the backbone.
        weight_decay: default weight decay.
        weight_decay_norm: weight decay of the parameters of ``norm_module_types`` modules.
        weight_decay_embed: weight decay of ``nn.Embedding`` weights (e.g. the query embeddings).
        backbone_multiplier: lr factor for parameters of modules whose name contains ``"backbone"``.
        norm_module_types: the normalization layers that get ``weight_decay_norm`` (default
            :data:`segcore.solver.NORM_MODULE_TYPES`, every kind).

    Returns:
        list of ``{"params": [p], "lr": float, "weight_decay": float}``, in module order; Swin's
        ``relative_position_bias_table`` and ``absolute_pos_embed`` get no weight decay.
    """
    params: List[Dict[str, Any]] = []
    for module_name, module, param_name, value in iter_trainable_parameters(model):
        group = {"params": [value], "lr": base_lr, "weight_decay": weight_decay}
        if "backbone" in module_name:
            group["lr"] = base_lr * backbone_multiplier
        if any(name in param_name for name in POSITION_EMBEDDING_PARAM_NAMES):
            group["weight_decay"] = 0.0
        if isinstance(module, norm_module_types):
            group["weight_decay"] = weight_decay_norm
        if isinstance(module, nn.Embedding):
            group["weight_decay"] = weight_decay_embed
        params.append(group)
    return params


def mask_former_param_groups_from_config(cfg, model: nn.Module) -> List[Dict[str, Any]]:
    """:func:`get_mask_former_param_groups` with ``SOLVER.BASE_LR``, ``WEIGHT_DECAY``,
    ``WEIGHT_DECAY_NORM``, ``WEIGHT_DECAY_EMBED`` and ``BACKBONE_MULTIPLIER``: the parameter groups
    of every model of the family (``optimizer_param_groups`` of the MaskFormer meta-architecture,
    and of the per-pixel baselines' heads)."""
    s = cfg.SOLVER
    return get_mask_former_param_groups(model, base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY,
                                        weight_decay_norm=s.WEIGHT_DECAY_NORM, weight_decay_embed=s.WEIGHT_DECAY_EMBED,
                                        backbone_multiplier=s.BACKBONE_MULTIPLIER)
