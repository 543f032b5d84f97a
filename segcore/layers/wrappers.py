"""Thin wrappers around torch layers."""
from __future__ import annotations

from typing import List

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Conv2d", "cat"]


def cat(tensors: List[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.cat`` that avoids a copy for a single tensor."""
    assert isinstance(tensors, (list, tuple))
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` that applies an optional ``norm`` and ``activation`` after the convolution.

    The norm is a child module named ``norm`` so its state-dict names are
    ``<conv>.norm.weight`` etc., as in Detectron2 checkpoints.

    Args:
        *args, **kwargs: as ``nn.Conv2d``.
        norm: an ``nn.Module`` (usually from :func:`get_norm`) or None.
        activation: a callable applied last, or None.
    """

    def __init__(self, *args, **kwargs):
        norm = kwargs.pop("norm", None)
        activation = kwargs.pop("activation", None)
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
