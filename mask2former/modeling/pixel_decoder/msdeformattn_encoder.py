"""The multi-scale deformable-attention transformer encoder of Mask2Former's pixel decoder
(Deformable DETR, Zhu et al., ICLR 2021, Sec. 4.1; Mask2Former, Cheng et al., CVPR 2022, Sec. 4.1).

Names equal the original's: ``level_embed``, ``encoder.layers.{j}.{self_attn.*, norm1, linear1,
linear2, norm2}`` (under the pixel decoder's ``transformer``).
"""
from __future__ import annotations

import copy
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ...ops import MSDeformAttn

__all__ = ["MSDeformAttnTransformerEncoder", "MSDeformAttnTransformerEncoderLayer", "MSDeformAttnTransformerEncoderOnly"]


class MSDeformAttnTransformerEncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then a feed-forward block; post-norm.

    Args:
        d_model: channels C. d_ffn: hidden width of the feed-forward block. dropout: after the
        attention, inside and after the feed-forward block. activation: the feed-forward
        nonlinearity. n_levels, n_heads, n_points: see :class:`mask2former.ops.MSDeformAttn`.

    ``forward(src, pos, reference_points, spatial_shapes, level_start_index, padding_mask=None)``:
    src, pos (N, S, C) float; reference_points (N, S, L, 2) normalized (x, y); spatial_shapes
    (L, 2) int64; level_start_index (L,) int64; padding_mask (N, S) bool or None. Returns (N, S, C).

    With ``F.relu`` (the default and the original's) the activation is applied in place on
    ``linear1``'s output (the same values and gradients; one (N, S, d_ffn) tensor fewer to
    allocate, and to keep for the backward pass).
    """

    def __init__(self, *, d_model: int = 256, d_ffn: int = 1024, dropout: float = 0.1,
                 activation: Callable[[Tensor], Tensor] = F.relu, n_levels: int = 4, n_heads: int = 8,
                 n_points: int = 4):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model=d_model, n_levels=n_levels, n_heads=n_heads, n_points=n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.activation = activation
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: Tensor, pos: Optional[Tensor], reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        query = src if pos is None else src + pos
        attended = self.self_attn(query, reference_points, src, spatial_shapes, level_start_index, padding_mask)
        src = self.norm1(src + self.dropout1(attended))
        hidden = self.linear1(src)
        hidden = F.relu_(hidden) if self.activation is F.relu else self.activation(hidden)
        hidden = self.dropout2(hidden)
        return self.norm2(src + self.dropout3(self.linear2(hidden)))


class MSDeformAttnTransformerEncoder(nn.Module):
    """``num_layers`` copies of ``encoder_layer`` (deep copies: the layers start identical before
    the owner re-initializes them, as in the original), each query's reference point being its
    own pixel centre."""

    def __init__(self, encoder_layer: nn.Module, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers

    @staticmethod
    def reference_points(shapes: Sequence[Sequence[int]], batch_size: int, device: torch.device) -> Tensor:
        """Pixel centres of every level, normalized: float32 (batch_size, S, L, 2), (x, y) =
        ((j + 0.5) / W_l, (i + 0.5) / H_l) for pixel (i, j) of level l, the same for every level
        the query attends to (no padding: the valid ratios of Deformable DETR are all 1)."""
        points = []
        for h, w in shapes:
            # (arange + 0.5) equals linspace(0.5, h - 0.5, h) exactly (integers + 0.5 in float32) and,
            # unlike linspace's step count, keeps a symbolic h symbolic under torch.export
            ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
            xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=-1))
        points = torch.cat(points, dim=0)  # (S, 2)
        return points[None, :, None, :].expand(batch_size, -1, len(shapes), -1)

    def forward(self, src: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, pos: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None, *,
                shapes: Optional[Sequence[Tuple[int, int]]] = None) -> Tensor:
        """src, pos: (N, S, C); spatial_shapes (L, 2) int64; level_start_index (L,) int64;
        padding_mask (N, S) bool or None. Returns (N, S, C).

        ``shapes``: the (H_l, W_l) of ``spatial_shapes`` as Python (or symbolic) integers, when the
        caller has them: the reference points are then computed without reading the tensor's
        values, so that ``torch.export`` traces the encoder with dynamic image sizes."""
        if shapes is None:
            shapes = spatial_shapes.tolist()
        reference_points = self.reference_points(shapes, src.shape[0], src.device)
        output = src
        for layer in self.layers:
            output = layer(output, pos, reference_points, spatial_shapes, level_start_index, padding_mask)
        return output


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """Deformable DETR's encoder over L feature maps, with a learned embedding per level added to
    the position encodings (Deformable DETR Sec. 4.1, "scale-level embedding").

    Args:
        d_model: channels C. nhead: attention heads. num_encoder_layers: layers. dim_feedforward:
        feed-forward width. dropout: dropout probability. activation: feed-forward nonlinearity.
        num_feature_levels: L. enc_n_points: sampling points per head and level.

    Parameters: ``level_embed`` (L, C) and ``encoder.layers.{j}.*``. Initialization (the
    original's): Xavier-uniform for every matrix, then each :class:`MSDeformAttn`'s own
    initialization, then N(0, 1) for ``level_embed``.
    """

    def __init__(self, *, d_model: int = 256, nhead: int = 8, num_encoder_layers: int = 6,
                 dim_feedforward: int = 1024, dropout: float = 0.1, activation: Callable[[Tensor], Tensor] = F.relu,
                 num_feature_levels: int = 4, enc_n_points: int = 4):
        super().__init__()
        self.d_model = d_model
        self.nhead = nhead
        layer = MSDeformAttnTransformerEncoderLayer(d_model=d_model, d_ffn=dim_feedforward, dropout=dropout,
                                                    activation=activation, n_levels=num_feature_levels,
                                                    n_heads=nhead, n_points=enc_n_points)
        self.encoder = MSDeformAttnTransformerEncoder(layer, num_encoder_layers)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self._reset_parameters()

    @torch.no_grad()
    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m._reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, srcs: List[Tensor], pos_embeds: List[Tensor]) -> Tensor:
        """Encode the maps ``srcs`` jointly.

        Args:
            srcs: L float tensors (N, C, H_l, W_l), in the order of ``level_embed``.
            pos_embeds: L float tensors of the same shapes (position encodings).

        Returns:
            (N, S, C), the levels flattened row-major and concatenated (S = sum_l H_l * W_l).

        Raises:
            ValueError: not L maps, or a position encoding's shape differs from its map's.
        """
        num_levels = self.level_embed.shape[0]
        if len(srcs) != num_levels or len(pos_embeds) != num_levels:
            raise ValueError(f"MSDeformAttnTransformerEncoderOnly: expected {num_levels} maps and position "
                             f"encodings, got {len(srcs)} and {len(pos_embeds)}")
        for level, (src, pos) in enumerate(zip(srcs, pos_embeds)):
            if src.shape != pos.shape:
                raise ValueError(f"MSDeformAttnTransformerEncoderOnly: level {level}: map {tuple(src.shape)} and "
                                 f"position encoding {tuple(pos.shape)} differ")
        shapes = [tuple(src.shape[-2:]) for src in srcs]
        src_flatten = torch.cat([src.flatten(2).transpose(1, 2) for src in srcs], dim=1)
        pos_flatten = torch.cat([pos.flatten(2).transpose(1, 2) + self.level_embed[level].view(1, 1, -1)
                                 for level, pos in enumerate(pos_embeds)], dim=1)
        spatial_shapes = shape_tensor(shapes, src_flatten.device)
        sizes = spatial_shapes.prod(1)
        level_start_index = torch.cat((sizes.new_zeros((1,)), sizes.cumsum(0)[:-1]))
        return self.encoder(src_flatten, spatial_shapes, level_start_index, pos_flatten, shapes=shapes)


def shape_tensor(shapes: Sequence[Tuple[int, int]], device: torch.device) -> Tensor:
    """The levels' (H_l, W_l) as an int64 (L, 2) tensor on ``device``.

    Built element by element with ``torch.full`` rather than ``torch.as_tensor``: under
    ``torch.export`` the sizes are symbolic, and ``as_tensor`` would fix them to the traced values
    (the exported graph would then serve one image size only)."""
    return torch.stack([torch.stack([torch.full((), size, dtype=torch.long, device=device) for size in hw])
                        for hw in shapes])
