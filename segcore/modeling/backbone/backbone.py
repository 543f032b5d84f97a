"""The Backbone base class: a feature extractor that declares its output shapes."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Dict

import torch
from torch import nn

from segcore.layers import ShapeSpec

__all__ = ["Backbone"]


class Backbone(nn.Module, metaclass=ABCMeta):
    """Abstract backbone (Detectron2 ``Backbone``).

    Subclasses implement ``forward(x)`` taking (N, C, H, W) float images and returning a dict
    ``{feature_name: (N, C_f, H / stride_f, W / stride_f)}``, and set ``_out_features``,
    ``_out_feature_channels`` and ``_out_feature_strides`` so that :meth:`output_shape` tells
    heads what they receive without running the network.
    """

    def __init__(self):
        super().__init__()

    @abstractmethod
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        pass

    @property
    def size_divisibility(self) -> int:
        """Input height and width must be multiples of this (pixels); 0 means no constraint."""
        return 0

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return {}

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """{name: ShapeSpec(channels, stride)} of each output feature."""
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }
