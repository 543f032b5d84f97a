"""Sinusoidal 3-D position encoding over time and space (Mask2Former for VIS, Cheng et al. 2021,
Sec. 3: "we use 3D positional encoding"; the original ``PositionEmbeddingSine3D``)."""
from __future__ import annotations

from typing import Optional

import torch

from mask_former.modeling.transformer import PositionEmbeddingSine

__all__ = ["PositionEmbeddingSine3D"]


class PositionEmbeddingSine3D(PositionEmbeddingSine):
    """DETR's 2-D sine encoding of (y, x) in every frame, plus a sine encoding of the frame index t.

    The spatial part is :class:`~mask_former.modeling.transformer.PositionEmbeddingSine` of each
    frame (``2 * num_pos_feats`` channels: y, then x). The temporal part encodes the normalized
    frame position with ``2 * num_pos_feats`` frequencies (``temperature ** (2 * (i // 2) / (2 *
    num_pos_feats))``, sine on even and cosine on odd channels) and is *added* to the spatial part
    (not concatenated), as in the original.

    Args:
        num_pos_feats: channels per spatial axis; the output has ``2 * num_pos_feats`` channels
            (usually ``hidden_dim // 2``).
        temperature: wavelength base. normalize: scale positions (t, y, x) to [0, scale].
        scale: 2π by default; only valid with ``normalize=True``.

    ``forward(x, mask=None)``: x float (B, T, C, H, W) (only its shape and device are used); mask
    bool (B, T, H, W), True at padding. Returns float32 (B, T, 2 * num_pos_feats, H, W).

    Raises:
        ValueError: ``x`` is not 5-D (from ``forward``); ``scale`` without ``normalize``.
    """

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"PositionEmbeddingSine3D: x must be (B, T, C, H, W), got shape {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        if mask is None:
            mask = torch.zeros((b, t, h, w), device=x.device, dtype=torch.bool)
        spatial = super().forward(x.flatten(0, 1), mask.flatten(0, 1)).view(b, t, -1, h, w)
        z_embed = (~mask).cumsum(1, dtype=torch.float32)
        if self.normalize:
            eps = 1e-6
            z_embed = z_embed / (z_embed[:, -1:, :, :] + eps) * self.scale
        channels = 2 * self.num_pos_feats
        dim_t = torch.arange(channels, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / channels)
        pos_z = z_embed[:, :, :, :, None] / dim_t
        pos_z = torch.stack((pos_z[..., 0::2].sin(), pos_z[..., 1::2].cos()), dim=5).flatten(4)
        return spatial + pos_z.permute(0, 1, 4, 2, 3)
