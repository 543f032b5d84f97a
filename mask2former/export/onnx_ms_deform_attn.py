"""The ONNX form of multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3):
``torch.ops.mask2former.ms_deform_attn`` written in standard ONNX operators (opset 18), for
:func:`segcore.export.export_model` (``torch.onnx.export``'s dynamo-based exporter).

It is the computation of the pure-PyTorch reference (:func:`mask2former.ops.ms_deform_attn_pytorch`)
step for step: per level, the level's values cut out of ``value`` (``Slice`` at
``level_start_index``, ``Reshape`` to (N*M, D, H_l, W_l) with the sizes read from
``spatial_shapes`` at run time), one bilinear ``GridSample`` (zero padding, ``align_corners=0``) at
``2 * location - 1``; the samples of all levels and points concatenated, weighted and summed in one
``ReduceSum``, as the reference does. So the file runs on stock onnxruntime (no custom operator)
and the level sizes stay dynamic: one exported file serves every image size.

Why a translation of the operator rather than tracing the reference: the reference reads the level
sizes with ``spatial_shapes.tolist()``, which ``torch.export`` can only trace by fixing the image
size; the operator keeps them symbolic (its fake implementation reads only shapes).
"""
from __future__ import annotations

from typing import Any

__all__ = ["ms_deform_attn_onnx"]


def ms_deform_attn_onnx(value: Any, spatial_shapes: Any, level_start_index: Any, sampling_locations: Any,
                        attention_weights: Any) -> Any:
    """Build the ONNX nodes of ``mask2former::ms_deform_attn`` (called by ``torch.onnx.export``'s
    dynamo-based exporter with ONNX values, under onnxscript's tracing evaluator).

    Args:
        value: float (N, S, M, D); M and D must be static.
        spatial_shapes: int64 (L, 2), (H_l, W_l) per level (run-time values).
        level_start_index: int64 (L,), where each level starts in S.
        sampling_locations: float (N, Lq, M, L, P, 2), normalized (x, y); L and P static.
        attention_weights: float (N, Lq, M, L, P).

    Returns:
        float (N, Lq, M * D): the ONNX value of the attention's output.

    Raises:
        ValueError: M, D, L or P is not a static size.
    """
    from onnxscript import opset18 as op  # the exporter's own dependency, only while exporting

    n_heads, head_dim = _static(value, 2, "heads M"), _static(value, 3, "channels per head D")
    num_levels = _static(sampling_locations, 3, "levels L")
    num_points = _static(sampling_locations, 4, "points P")
    batch = op.Shape(value, start=0, end=1)  # [N]
    queries = op.Shape(sampling_locations, start=1, end=2)  # [Lq]
    batch_heads = op.Mul(batch, op.Constant(value_ints=[n_heads]))  # [N*M]
    # grid_sample's grid spans [-1, 1] over the map (align_corners=False: to the outer pixel edges)
    two = op.CastLike(op.Constant(value_float=2.0), sampling_locations)
    one = op.CastLike(op.Constant(value_float=1.0), sampling_locations)
    grids = op.Sub(op.Mul(sampling_locations, two), one)
    samples = []
    for level in range(num_levels):
        index = op.Constant(value_ints=[level])
        size_hw = op.Reshape(op.Gather(spatial_shapes, index, axis=0), op.Constant(value_ints=[2]))  # [H, W]
        start = op.Gather(level_start_index, index, axis=0)  # [start]
        end = op.Add(start, op.ReduceProd(size_hw, keepdims=1))
        level_value = op.Slice(value, start, end, op.Constant(value_ints=[1]))  # (N, H*W, M, D)
        # (N, H*W, M, D) -> (N, M, D, H*W) -> (N*M, D, H, W)
        value_map = op.Reshape(op.Transpose(level_value, perm=[0, 2, 3, 1]),
                               op.Concat(batch_heads, op.Constant(value_ints=[head_dim]), size_hw, axis=0))
        # (N, Lq, M, P, 2) -> (N, M, Lq, P, 2) -> (N*M, Lq, P, 2)
        level_grid = op.Gather(grids, op.Constant(value_int=level), axis=3)
        level_grid = op.Reshape(op.Transpose(level_grid, perm=[0, 2, 1, 3, 4]),
                                op.Concat(batch_heads, queries, op.Constant(value_ints=[num_points, 2]), axis=0))
        # (N*M, D, Lq, P)
        samples.append(op.GridSample(value_map, level_grid, mode="bilinear", padding_mode="zeros", align_corners=0))
    # one sum over all levels and points, as the reference: (N*M, D, Lq, L*P)
    stacked = op.Concat(*samples, axis=-1)
    # (N, Lq, M, L, P) -> (N, M, Lq, L, P) -> (N*M, 1, Lq, L*P)
    weights = op.Reshape(op.Transpose(attention_weights, perm=[0, 2, 1, 3, 4]),
                         op.Concat(batch_heads, op.Constant(value_ints=[1]), queries,
                                   op.Constant(value_ints=[num_levels * num_points]), axis=0))
    out = op.ReduceSum(op.Mul(stacked, weights), op.Constant(value_ints=[-1]), keepdims=0)  # (N*M, D, Lq)
    # (N*M, D, Lq) -> (N, M*D, Lq) -> (N, Lq, M*D)
    out = op.Reshape(out, op.Concat(batch, op.Constant(value_ints=[n_heads * head_dim]), queries, axis=0))
    return op.Transpose(out, perm=[0, 2, 1])


def _static(value: Any, axis: int, what: str) -> int:
    size = value.shape[axis] if value.shape is not None else None
    if not isinstance(size, int):
        raise ValueError(f"mask2former::ms_deform_attn's ONNX form needs a static number of {what} "
                         f"(axis {axis} of a {value.shape} input)")
    return size
