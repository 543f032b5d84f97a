"""SeMask-FPN's optimizer parameter groups (the release's mmcv ``paramwise_cfg``).

The SeMask-FPN configs (``SeMask-FPN/configs/semask_swin/*/semfpn_*.py``) train with AdamW and
``paramwise_cfg=dict(custom_keys={'absolute_pos_embed': decay_mult 0, 'relative_position_bias_table':
decay_mult 0, 'norm': decay_mult 0})``: mmcv matches these keys as substrings of the full
parameter names. In that model every parameter whose name contains ``norm`` belongs to a
LayerNorm of the SeMask Swin backbone (``norm1`` / ``norm2`` of the blocks, the Semantic Layers'
``norm1``, ``patch_embed.norm``, ``downsample.norm``, the output ``norm{i}``); the FPN head's
BatchNorms are named ``bn`` there and keep the weight decay, as do all biases. No learning-rate
multiplier is set.
"""
from __future__ import annotations

from typing import Any, Dict, List

from torch import nn

from mask_former.solver import get_mask_former_param_groups

__all__ = ["semask_fpn_param_groups", "semask_fpn_param_groups_from_config"]


def semask_fpn_param_groups(model: nn.Module, *, base_lr: float, weight_decay: float, weight_decay_norm: float,
                            backbone_multiplier: float = 1.0) -> List[Dict[str, Any]]:
    """One optimizer parameter group per trainable parameter, as the SeMask-FPN release: MaskFormer's
    groups (:func:`mask_former.solver.get_mask_former_param_groups`) with only LayerNorms counted as
    normalization layers.

    Args:
        model: the model; frozen parameters are left out, shared ones appear once.
        base_lr: learning rate.
        weight_decay: weight decay of every other parameter (the head's BatchNorms and all biases
            included).
        weight_decay_norm: weight decay of ``nn.LayerNorm`` parameters (0 in the release).
        backbone_multiplier: lr factor for parameters of modules whose name contains "backbone"
            (1 in the release).

    Returns:
        list of ``{"params": [p], "lr": float, "weight_decay": float}`` in module order; Swin's
        ``relative_position_bias_table`` and ``absolute_pos_embed`` get no weight decay.
    """
    return get_mask_former_param_groups(model, base_lr=base_lr, weight_decay=weight_decay,
                                        weight_decay_norm=weight_decay_norm, weight_decay_embed=weight_decay,
                                        backbone_multiplier=backbone_multiplier, norm_module_types=(nn.LayerNorm,))


def semask_fpn_param_groups_from_config(cfg, model: nn.Module) -> List[Dict[str, Any]]:
    """:func:`semask_fpn_param_groups` with ``SOLVER.BASE_LR``, ``WEIGHT_DECAY``,
    ``WEIGHT_DECAY_NORM`` and ``BACKBONE_MULTIPLIER``."""
    s = cfg.SOLVER
    return semask_fpn_param_groups(model, base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY,
                                   weight_decay_norm=s.WEIGHT_DECAY_NORM, backbone_multiplier=s.BACKBONE_MULTIPLIER)
