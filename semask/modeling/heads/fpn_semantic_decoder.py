"""SeMask-FPN's semantic decoder: the stage maps summed at the finest stride, in the FPN's geometry.

Jain et al., "SeMask" (2021), Sec. 3: the parameter-free decoder that accumulates the semantic
prior maps of the encoder stages (the ``cls_scale_heads`` branch of the SeMask-FPN release's
``BranchFPNHead``). It differs from SeMask-MaskFormer's
:class:`~semask.modeling.heads.semantic_decoder.SemanticPriorDecoder` in two ways, both taken from
the release: the bilinear upsampling uses ``align_corners=False`` (the FPN head's setting), and
the sum stays at the finest stride; the loss upsamples it to the label size
(:func:`semask.modeling.fpn_losses.upsampled_cross_entropy`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .semantic_decoder import SemanticPriorDecoder

__all__ = ["FPNSemanticPriorDecoder"]


class FPNSemanticPriorDecoder(SemanticPriorDecoder):
    """Sum the per-stage semantic maps at the finest map's resolution.

    Map i (stride s_i = 2**n_i * s_0) goes through n_i successive x2 bilinear upsamplings
    (``align_corners=False``), is resized to the finest map's size when the sizes still differ
    (inputs whose side is not a multiple of the coarsest stride), and is added to the finest map.

    Args:
        feature_strides: the strides (pixels) of the maps, finest first, each a power-of-two
            multiple of the first (e.g. [4, 8, 16, 32]).

    Raises:
        ValueError: as :class:`SemanticPriorDecoder` (no stride, the first is not the smallest, a
            stride that is not a power-of-two multiple of the first).
    """

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            maps: one (B, K, H_i, W_i) float map per stride, in the order of ``feature_strides``.

        Returns:
            (B, K, H_0, W_0) logits at the finest stride s_0.

        Raises:
            ValueError: not one map per stride.
        """
        if len(maps) != len(self.feature_strides):
            raise ValueError(f"FPNSemanticPriorDecoder: got {len(maps)} maps for strides {self.feature_strides}")
        size = maps[0].shape[-2:]
        prior = maps[0]
        for level, coarse in enumerate(maps[1:], start=1):
            for _ in range(self.upsampling_steps[level]):
                coarse = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)
            if coarse.shape[-2:] != size:
                coarse = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
            prior = prior + coarse
        return prior
