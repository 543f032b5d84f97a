"""Normalization layers: ``FrozenBatchNorm2d``, ``GroupNorm`` and the ``get_norm`` factory."""
from __future__ import annotations

import math
from typing import Callable, Union

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FrozenBatchNorm2d", "GroupNorm", "get_norm", "NaiveSyncBatchNorm"]


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers.

    Computes ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel, for
    x of shape (N, C, H, W), any float dtype. All four tensors are buffers (never trained), named
    as in ``nn.BatchNorm2d`` so checkpoints load either way. Used by the ImageNet-pretrained
    ResNets of Detectron2 and the original MaskFormer configs (``MODEL.RESNETS.NORM: FrozenBN``).
    """

    _version = 3

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)
        self.register_buffer("num_batches_tracked", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            bias = self.bias - self.running_mean * scale
            scale = scale.reshape(1, -1, 1, 1)
            bias = bias.reshape(1, -1, 1, 1)
            out_dtype = x.dtype
            return x * scale.to(out_dtype) + bias.to(out_dtype)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=self.eps)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            # Checkpoints older than Detectron2's v2 carry no running stats.
            if prefix + "running_mean" not in state_dict:
                state_dict[prefix + "running_mean"] = torch.zeros_like(self.running_mean)
            if prefix + "running_var" not in state_dict:
                state_dict[prefix + "running_var"] = torch.ones_like(self.running_var)
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def __repr__(self) -> str:
        return f"FrozenBatchNorm2d(num_features={self.num_features}, eps={self.eps})"

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm / SyncBatchNorm in ``module`` by a FrozenBatchNorm2d (in place
        where possible) with the same statistics; returns the converted module."""
        bn_module = (nn.modules.batchnorm.BatchNorm2d, nn.modules.batchnorm.SyncBatchNorm)
        res = module
        if isinstance(module, bn_module):
            res = cls(module.num_features)
            if module.affine:
                res.weight.data = module.weight.data.clone().detach()
                res.bias.data = module.bias.data.clone().detach()
            res.running_mean.data = module.running_mean.data
            res.running_var.data = module.running_var.data
            res.eps = module.eps
        else:
            for name, child in module.named_children():
                new_child = cls.convert_frozen_batchnorm(child)
                if new_child is not child:
                    res.add_module(name, new_child)
        return res


class NaiveSyncBatchNorm(nn.SyncBatchNorm):
    """SyncBatchNorm that falls back to plain BatchNorm2d when not distributed (e.g. on CPU)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()) or not input.is_cuda:
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                                self.training, self.momentum if self.momentum is not None else 0.1, self.eps)
        return super().forward(input)


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that also takes inputs with a single value per group and sample.

    With one channel per group (``num_channels == num_groups``) and a 1x1 map, e.g. the stride-32
    features of an image of at most 32x32 pixels in a model 32 channels wide, every group holds
    one value: its normalized value is 0, so the output is ``bias``. ``F.group_norm`` computes
    exactly that for a batch of several such inputs but refuses a batch of one ("Expected more
    than 1 value per channel when training", also in eval mode); this class returns the same
    result for any batch size. Otherwise (and for parameters, state-dict names and ``repr``) it
    is ``nn.GroupNorm``.

    Input (N, C, *) -> output of the same shape.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        values_per_group = (self.num_channels // self.num_groups) * math.prod(input.shape[2:])
        if values_per_group == 1 and input.dim() > 1:
            out = torch.zeros_like(input)
            if self.affine:
                out = out + self.bias.view(1, -1, *([1] * (input.dim() - 2))).to(input.dtype)
            return out
        return super().forward(input)


def _gn(channels: int) -> nn.Module:
    return GroupNorm(32, channels)


_NORMS: dict = {
    "BN": nn.BatchNorm2d,
    "SyncBN": NaiveSyncBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": _gn,
    "nnSyncBN": nn.SyncBatchNorm,
    "LN": lambda channels: GroupNorm(1, channels),
}


def get_norm(norm: Union[str, Callable, None], out_channels: int) -> nn.Module | None:
    """Build a 2-D normalization layer for ``out_channels`` channels.

    Args:
        norm: "" or None (no norm), "BN", "SyncBN" (BatchNorm synchronized across processes;
            plain BatchNorm when not distributed), "FrozenBN", "GN" (32 groups), "LN"
            (GroupNorm with one group), or a callable ``channels -> nn.Module``.
        out_channels: number of channels.

    Returns:
        The module, or None when ``norm`` is empty.

    Raises:
        ValueError: unknown norm name.
    """
    if norm is None or norm == "":
        return None
    if isinstance(norm, str):
        if norm not in _NORMS:
            raise ValueError(f"Unknown norm '{norm}'; expected one of {sorted(_NORMS)} or ''")
        norm = _NORMS[norm]
    return norm(out_channels)
