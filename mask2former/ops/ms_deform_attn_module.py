"""The multi-scale deformable attention module (Deformable DETR, Zhu et al., ICLR 2021, Sec. 4.1,
Eq. 3), used by Mask2Former's pixel decoder (Mask2Former Sec. 4.1).

Parameter names (``sampling_offsets``, ``attention_weights``, ``value_proj``, ``output_proj``)
and their initialization equal the original code's, so its checkpoints load.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .ms_deform_attn import IMPLEMENTATIONS, ms_deform_attn

__all__ = ["MSDeformAttn"]


def _check_positive_int(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"MSDeformAttn: {name} must be a positive int, got {v!r}")


class MSDeformAttn(nn.Module):
    """Each query attends to ``n_points`` learned sampling points around its reference point on
    each of ``n_levels`` feature maps, per head.

    Args:
        d_model: channels C of queries and values (divisible by ``n_heads``).
        n_levels: feature levels L.
        n_heads: attention heads M.
        n_points: sampling points P per head and level.
        impl: the implementation of the attention core, :func:`mask2former.ops.ms_deform_attn`'s
            ``impl``: "auto" (the registered operator: a compiled kernel where available) or
            "pytorch" (the reference, for debugging).

    Modules: ``sampling_offsets`` (Linear C -> M*L*P*2), ``attention_weights`` (Linear C -> M*L*P),
    ``value_proj`` and ``output_proj`` (Linear C -> C).

    Raises:
        ValueError: an argument is not a positive int, ``d_model`` is not divisible by ``n_heads``, or
            ``impl`` is unknown.

    A per-head width ``d_model // n_heads`` that is not a power of 2 gives a UserWarning (the
    original's CUDA kernel is slower then), not an error.
    """

    def __init__(self, *, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4,
                 impl: str = "auto"):
        super().__init__()
        for name, v in (("d_model", d_model), ("n_levels", n_levels), ("n_heads", n_heads), ("n_points", n_points)):
            _check_positive_int(name, v)
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"MSDeformAttn: impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
        if d_model % n_heads != 0:
            raise ValueError(f"MSDeformAttn: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        head_dim = d_model // n_heads
        if head_dim & (head_dim - 1) != 0:
            warnings.warn(f"MSDeformAttn: the per-head width d_model // n_heads = {head_dim} is not a power of 2; "
                          "compiled CUDA kernels are most efficient with a power of 2", UserWarning, stacklevel=2)
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.impl = impl

        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def initial_offsets(self) -> Tensor:
        """The initial bias of ``sampling_offsets``, float32 (M * L * P * 2,) laid out (M, L, P, (x, y)).

        Head m points in direction theta_m = 2 pi m / M, scaled so that its larger coordinate is
        +-1 (a point on the square [-1, 1]^2), and point k (0-based) lies k + 1 times as far; the
        same for every level (the initialization of the Deformable DETR code). Offsets are in pixels of
        each level (or in box units, see :meth:`sampling_locations`).
        """
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack([thetas.cos(), thetas.sin()], dim=-1)
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values
        scale = torch.arange(1, self.n_points + 1, dtype=torch.float32)
        offsets = directions[:, None, None, :] * scale[None, None, :, None]
        return offsets.expand(self.n_heads, self.n_levels, self.n_points, 2).reshape(-1)

    @torch.no_grad()
    def _reset_parameters(self) -> None:
        """The original initialization: zero offset weights with the :meth:`initial_offsets` bias,
        zero attention weights and bias (uniform attention after the softmax), Xavier-uniform
        projections with zero bias."""
        nn.init.zeros_(self.sampling_offsets.weight)
        self.sampling_offsets.bias.copy_(self.initial_offsets())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def _check_forward_inputs(self, query: Tensor, reference_points: Tensor, input_flatten: Tensor,
                              input_spatial_shapes: Tensor, input_padding_mask: Optional[Tensor]) -> None:
        if query.dim() != 3 or query.shape[-1] != self.d_model:
            raise ValueError(f"MSDeformAttn: query must be (N, Lq, {self.d_model}), got {tuple(query.shape)}")
        n = query.shape[0]
        if input_flatten.dim() != 3 or input_flatten.shape[0] != n or input_flatten.shape[-1] != self.d_model:
            raise ValueError(f"MSDeformAttn: input_flatten must be (N={n}, S, {self.d_model}), "
                             f"got {tuple(input_flatten.shape)}")
        expected = (n, query.shape[1], self.n_levels)
        if reference_points.dim() != 4 or tuple(reference_points.shape[:3]) != expected:
            raise ValueError(f"MSDeformAttn: reference_points must be (N, Lq, n_levels, 2 or 4) = "
                             f"{expected + ('2 or 4',)}, got {tuple(reference_points.shape)}")
        if reference_points.shape[-1] not in (2, 4):
            raise ValueError(f"MSDeformAttn: the last dimension of reference_points must be 2 (points) or 4 "
                             f"(boxes), got {reference_points.shape[-1]}")
        if input_spatial_shapes.dim() != 2 or input_spatial_shapes.shape[0] != self.n_levels:
            raise ValueError(f"MSDeformAttn: input_spatial_shapes must be (n_levels={self.n_levels}, 2), "
                             f"got {tuple(input_spatial_shapes.shape)}")
        mask = input_padding_mask
        if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != tuple(input_flatten.shape[:2])):
            raise ValueError(f"MSDeformAttn: input_padding_mask must be bool (N, S) = "
                             f"{tuple(input_flatten.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")

    def forward(self, query: Tensor, reference_points: Tensor, input_flatten: Tensor, input_spatial_shapes: Tensor,
                input_level_start_index: Tensor, input_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend from ``query`` to the multi-scale ``input_flatten``.

        Args:
            query: (N, Lq, C) float.
            reference_points: (N, Lq, L, 2) normalized (x, y) in [0, 1] (top-left (0, 0),
                bottom-right (1, 1), padding included); sampling offsets are in pixels of each
                level. Or (N, Lq, L, 4) boxes (cx, cy, w, h), normalized; offsets are then in units
                of half the box size divided by ``n_points``.
            input_flatten: (N, S, C) float, the levels flattened row-major and concatenated,
                S = sum_l H_l * W_l.
            input_spatial_shapes: (L, 2) int64, (H_l, W_l).
            input_level_start_index: (L,) int64, offset of each level in S.
            input_padding_mask: (N, S) bool, True at padding positions (their values are zeroed), or None.

        Returns:
            (N, Lq, C) tensor of the query's dtype.

        Raises:
            ValueError: inconsistent shapes (see also :func:`ms_deform_attn`'s errors).
        """
        self._check_forward_inputs(query, reference_points, input_flatten, input_spatial_shapes, input_padding_mask)
        n, s, _ = input_flatten.shape
        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            value = value.masked_fill(input_padding_mask[..., None], 0.0)
        value = value.view(n, s, self.n_heads, self.d_model // self.n_heads)
        locations = self.sampling_locations(query, reference_points, input_spatial_shapes)
        weights = self.attention_probabilities(query)
        output = ms_deform_attn(value, input_spatial_shapes, input_level_start_index, locations, weights,
                                impl=self.impl)
        return self.output_proj(output)

    def attention_probabilities(self, query: Tensor) -> Tensor:
        """The attention weights A of ``query`` (N, Lq, C): a softmax over the L * P samples of each
        head, (N, Lq, M, L, P) (Deformable DETR, Eq. 3: sum_{l,k} A_{mlqk} = 1)."""
        n, lq, _ = query.shape
        logits = self.attention_weights(query).view(n, lq, self.n_heads, self.n_levels * self.n_points)
        return F.softmax(logits, dim=-1).view(n, lq, self.n_heads, self.n_levels, self.n_points)

    def sampling_locations(self, query: Tensor, reference_points: Tensor, input_spatial_shapes: Tensor) -> Tensor:
        """Normalized (x, y) sampling locations (N, Lq, M, L, P, 2) of ``query`` (N, Lq, C).

        With ``reference_points`` (N, Lq, L, 2), the predicted offsets are in pixels of each level:
        p + offset / (W_l, H_l) (Deformable DETR, Eq. 3). With boxes (N, Lq, L, 4) = (cx, cy, w, h):
        (cx, cy) + offset / P * (w, h) / 2, so that the initial offsets (:meth:`initial_offsets`)
        put the last point of each head on the box border (Deformable DETR's box-refinement variant,
        Appendix A).
        ``input_spatial_shapes``: (L, 2) integer (H_l, W_l).

        Raises:
            ValueError: the last dimension of ``reference_points`` is neither 2 nor 4.
        """
        n, lq, _ = query.shape
        offsets = self.sampling_offsets(query).view(n, lq, self.n_heads, self.n_levels, self.n_points, 2)
        if reference_points.shape[-1] == 2:
            # offsets in pixels of each level: divide by (W_l, H_l)
            normalizer = input_spatial_shapes.flip(-1).to(offsets.dtype)
            return reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        if reference_points.shape[-1] == 4:
            centers, sizes = reference_points[:, :, None, :, None, :2], reference_points[:, :, None, :, None, 2:]
            return centers + offsets / self.n_points * sizes * 0.5
        raise ValueError(f"MSDeformAttn: the last dimension of reference_points must be 2 (points) or 4 (boxes), "
                         f"got {reference_points.shape[-1]}")
