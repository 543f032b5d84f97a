"""SeMask's semantic decoder: the per-stage semantic maps accumulated into one prediction.

Jain et al., "SeMask" (2021), Sec. 3: a lightweight decoder, used only in training, sums the
semantic prior maps of the encoder stages at the finest stage's resolution and upsamples the sum
to the image, where a per-pixel cross-entropy supervises it (see
:mod:`semask.modeling.semantic_loss`). It has no parameters.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SemanticPriorDecoder"]


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class SemanticPriorDecoder(nn.Module):
    """Sum the stage maps at the finest stride, then upsample to the input resolution.

    Map i (stride s_i, a power-of-two multiple of the finest stride s_0) is upsampled by
    log2(s_i / s_0) successive x2 bilinear steps, then resized to the finest map's size (both with
    ``align_corners=True``, as the original), and added to it; the sum is upsampled
    (bilinear, ``align_corners=True``) by s_0 to the padded input size. The original multiplies by
    4, its Swin's finest stride; here it is the finest stride given.

    Args:
        feature_strides: the strides (pixels) of the maps, finest first (e.g. [4, 8, 16, 32]).

    Raises:
        ValueError: no stride, the first stride is not the smallest, or a stride is not a
            power-of-two multiple of the first.
    """

    def __init__(self, *, feature_strides: Sequence[int]):
        super().__init__()
        strides = [int(s) for s in feature_strides]
        if not strides:
            raise ValueError("SemanticPriorDecoder: no feature stride given")
        if min(strides) != strides[0]:
            raise ValueError(f"SemanticPriorDecoder: the first stride must be the finest, got {strides}")
        steps = []
        for s in strides:
            ratio = s // strides[0]
            if s % strides[0] or ratio & (ratio - 1):
                raise ValueError(f"SemanticPriorDecoder: stride {s} is not a power-of-two multiple of {strides[0]}")
            steps.append(int(math.log2(ratio)))
        self.feature_strides = strides
        self.upsampling_steps = steps

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            maps: one (B, K, H_i, W_i) float map per stride, in the order of ``feature_strides``.

        Returns:
            (B, K, H_0 * s_0, W_0 * s_0) logits.

        Raises:
            ValueError: not one map per stride.
        """
        if len(maps) != len(self.feature_strides):
            raise ValueError(f"SemanticPriorDecoder: got {len(maps)} maps for strides {self.feature_strides}")
        total = maps[0]
        for x, steps in zip(maps[1:], self.upsampling_steps[1:]):
            for _ in range(steps):
                x = _upsample2x(x)
            total = total + F.interpolate(x, size=total.shape[-2:], mode="bilinear", align_corners=True)
        size = [n * self.feature_strides[0] for n in total.shape[-2:]]
        return F.interpolate(total, size=size, mode="bilinear", align_corners=True)

    def extra_repr(self) -> str:
        return f"feature_strides={self.feature_strides}"
