"""The FLOP count of the operator ``mask2former::ms_deform_attn`` (multi-scale deformable attention,
Deformable DETR, Zhu et al., ICLR 2021, Eq. 3), registered with
:func:`segcore.analysis.register_flop_handle` when this module is imported.

Per batch entry n, query q, head m, level l and sampling point k the operator samples the head's D
channels bilinearly (4 multiply-adds per channel, fvcore's count for ``grid_sampler``) and adds them
weighted by the attention weight (1 multiply-add per channel): 5 * N * Lq * M * L * P * D FLOPs, one
fused multiply-add being one FLOP. The projections around it (``value_proj``, ``sampling_offsets``,
``attention_weights``, ``output_proj``) are ``nn.Linear`` layers counted on their own.

The original Mask2Former's count (its ``tools/analyze_model.py``, on a GPU) left this operator out:
there it is a ``torch.autograd.Function`` around the CUDA kernel, which the trace records as
``prim::PythonOp.MSDeformAttnFunction``, an unsupported operator (facebookresearch/Mask2Former
issue #117). It is about 2 GFLOPs of Mask2Former R50's 266 at 800 x 1333 (six encoder layers).
"""
from __future__ import annotations

from math import prod
from typing import Any, List, Sequence

from fvcore.nn.jit_handles import get_shape

from segcore.analysis import register_flop_handle

from .op import NAMESPACE

__all__ = ["MS_DEFORM_ATTN_OP", "MULTIPLY_ADDS_PER_SAMPLED_CHANNEL", "ms_deform_attn_flop_jit", "ms_deform_attn_flops"]

#: the traced operator's name
MS_DEFORM_ATTN_OP = f"{NAMESPACE}::ms_deform_attn"
#: bilinear interpolation (4 corners) + the attention-weighted sum (1)
MULTIPLY_ADDS_PER_SAMPLED_CHANNEL = 4 + 1


def ms_deform_attn_flops(value_shape: Sequence[int], attention_weights_shape: Sequence[int]) -> int:
    """FLOPs of ``ms_deform_attn`` (see the module docstring).

    Args:
        value_shape: (N, S, M, D). attention_weights_shape: (N, Lq, M, L, P).

    Raises:
        ValueError: shapes of the wrong rank, or batch / head counts that differ.
    """
    value, weights = [int(s) for s in value_shape], [int(s) for s in attention_weights_shape]
    if len(value) != 4 or len(weights) != 5:
        raise ValueError(f"ms_deform_attn FLOPs: value must be (N, S, M, D) and attention_weights "
                         f"(N, Lq, M, L, P), got {value} and {weights}")
    if value[0] != weights[0] or value[2] != weights[2]:
        raise ValueError(f"ms_deform_attn FLOPs: value {value} and attention_weights {weights} differ in "
                         "batch size or number of heads")
    return prod(weights) * value[3] * MULTIPLY_ADDS_PER_SAMPLED_CHANNEL


def ms_deform_attn_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """fvcore handle of ``mask2former::ms_deform_attn(value, spatial_shapes, level_start_index,
    sampling_locations, attention_weights)``."""
    value, weights = get_shape(inputs[0]), get_shape(inputs[4])
    if value is None or weights is None:
        raise ValueError(f"FLOP count of {MS_DEFORM_ATTN_OP}: the trace has no shape for value or attention_weights")
    return ms_deform_attn_flops(value, weights)


register_flop_handle(MS_DEFORM_ATTN_OP, ms_deform_attn_flop_jit)
