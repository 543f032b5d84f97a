"""fvcore FLOP handles for the operators fvcore does not count, or counts wrongly, in this project's models.

A handle takes a traced operator's ``inputs`` and ``outputs`` (``torch._C.Value``) and returns its
FLOP count; :class:`segcore.analysis.FlopCountAnalysis` uses fvcore's own handles (convolution,
``linear``, ``einsum``, the norms, the resizes, ``grid_sampler``) plus :func:`flop_handle_table`. The
convention is fvcore's and Detectron2's: **one fused multiply-add is one FLOP**, so a product of an
(n, k) and a (k, m) matrix is n * k * m FLOPs; elementwise operations (the additions of ``addmm``,
softmax, scaling, masks) are not counted.

What this module adds (fvcore 0.1.5's handles assert exactly two operands, which the fast paths break):

- Matrix products with an extra operand: ``aten::mm`` / ``matmul`` / ``bmm`` traced with ``out=``
  (the semantic post-processing writes its blocks in place) and ``aten::addmm`` / ``baddbmm`` /
  ``addbmm`` (``nn.MultiheadAttention`` with a mask uses ``baddbmm``): the product of the two
  matrices, with broadcast batch dimensions and 1-D operands as ``torch.matmul`` has them.
- ``aten::scaled_dot_product_attention`` (the decoders' and Swin's fused attention), which fvcore
  does not count at all: ``Q K^T`` and ``softmax(.) V``, i.e. batch * L * S * (E + Ev), what the
  written-out attention's two products count (Vaswani et al. 2017, Eq. 1).
- ``aten::batch_norm`` in eval mode: not counted. An eval-mode batch norm is a per-channel scale and
  shift (elementwise); the original MaskFormer / Mask2Former tools traced Detectron2's
  ``FrozenBatchNorm2d`` with gradients enabled, where it runs as a multiplication and an addition,
  which Detectron2 does not count. In training mode fvcore's count applies.

Model families register the handles of their own operators with :func:`register_flop_handle`
(e.g. ``mask2former.ops.flop_count`` for ``mask2former::ms_deform_attn``).
"""
from __future__ import annotations

import typing
from collections import Counter
from math import prod
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from fvcore.nn.jit_handles import batchnorm_flop_jit, get_shape

__all__ = ["Handle", "IGNORED_OPS", "UnknownShapeError", "batch_norm_flop_jit", "flop_handle_table",
           "matrix_product_flops", "matrix_product_handle", "register_flop_handle",
           "scaled_dot_product_attention_flop_jit", "scaled_dot_product_attention_flops"]

#: fvcore's handle signature: (inputs, outputs) of a traced node -> a count or a Counter of counts
Handle = Callable[[List[Any], List[Any]], Union[typing.Counter[str], int, float]]

#: Operators not counted and not reported as unsupported: Detectron2's list
#: (``detectron2/utils/analysis.py``, ``_IGNORED_OPS``, used by the original MaskFormer / Mask2Former
#: ``tools/analyze_model.py``): elementwise and reduction operators, sorting, NMS; plus ``aten::pad``,
#: which is how torch >= 2 traces the ``F.pad`` that Detectron2's list names as ``aten::constant_pad_nd``.
IGNORED_OPS = frozenset({
    "aten::add", "aten::add_", "aten::argmax", "aten::argsort", "aten::batch_norm", "aten::constant_pad_nd",
    "aten::div", "aten::div_", "aten::exp", "aten::log2", "aten::max_pool2d", "aten::meshgrid", "aten::mul",
    "aten::mul_", "aten::neg", "aten::nonzero_numpy", "aten::reciprocal", "aten::repeat_interleave", "aten::rsub",
    "aten::sigmoid", "aten::sigmoid_", "aten::softmax", "aten::sort", "aten::sqrt", "aten::sub", "torchvision::nms",
    "aten::pad",
})


class UnknownShapeError(ValueError):
    """A traced operand has no complete shape (the trace did not record its sizes)."""


def _shape(value: Any, op: str, what: str) -> List[int]:
    shape = get_shape(value)
    if shape is None:
        raise UnknownShapeError(f"FLOP count of {op}: the trace has no shape for {what}")
    return list(shape)


def matrix_product_flops(a_shape: Sequence[int], b_shape: Sequence[int]) -> int:
    """Multiply-adds of ``torch.matmul(a, b)``: batch * n * k * m for (..., n, k) @ (..., k, m).

    A 1-D ``a`` is a (1, k) row, a 1-D ``b`` a (k, 1) column (``torch.matmul``'s rule); batch
    dimensions broadcast. For ``addbmm``, pass its two batches: the sum over the batch is counted as
    its multiply-adds.

    Raises:
        ValueError: a 0-D operand, inner dimensions that differ, or batch dimensions that do not broadcast.
    """
    a, b = [int(s) for s in a_shape], [int(s) for s in b_shape]
    if not a or not b:
        raise ValueError(f"matrix product of shapes {a} and {b}: operands must have at least one dimension")
    if len(a) == 1:
        a = [1] + a
    if len(b) == 1:
        b = b + [1]
    (n, k), (k2, m) = a[-2:], b[-2:]
    if k != k2:
        raise ValueError(f"matrix product of shapes {list(a_shape)} and {list(b_shape)}: inner dimensions "
                         f"{k} and {k2} differ")
    try:
        batch = torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    except RuntimeError as e:
        raise ValueError(f"matrix product of shapes {list(a_shape)} and {list(b_shape)}: batch dimensions do "
                         f"not broadcast ({e})") from None
    return prod(batch) * n * k * m


def matrix_product_handle(first: int) -> Handle:
    """A handle counting the product of the operator's inputs ``first`` and ``first + 1``
    (:func:`matrix_product_flops`); any further input (``out=``, ``beta``, ``alpha``) is ignored.

    ``first`` is 0 for ``mm`` / ``matmul`` / ``bmm`` and 1 for ``addmm`` / ``baddbmm`` / ``addbmm``,
    whose input 0 is the tensor added to the product.
    """

    def handle(inputs: List[Any], outputs: List[Any]) -> int:
        if len(inputs) < first + 2:
            raise ValueError(f"matrix product handle: expected at least {first + 2} inputs, got {len(inputs)}")
        a = _shape(inputs[first], "a matrix product", f"input {first}")
        b = _shape(inputs[first + 1], "a matrix product", f"input {first + 1}")
        return matrix_product_flops(a, b)

    return handle


def scaled_dot_product_attention_flops(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int],
                                       out_shape: Optional[Sequence[int]] = None) -> int:
    """Multiply-adds of ``F.scaled_dot_product_attention(q, k, v)``: ``Q K^T`` (L * S * E per batch
    entry and head) plus ``softmax(.) V`` (L * S * Ev); the scaling, mask, softmax and dropout are
    elementwise and not counted, and a mask does not reduce the count (as for the written-out
    attention, which multiplies every pair and masks afterwards).

    Args:
        q_shape: (..., L, E). k_shape: (..., S, E). v_shape: (..., S, Ev).
        out_shape: (..., L, Ev), the output; its leading dimensions (batch, heads) are the ones the
            products run over (they include broadcasting and grouped-query heads). Default: q's.

    Raises:
        ValueError: shapes that do not fit together.
    """
    q, k, v = [list(map(int, s)) for s in (q_shape, k_shape, v_shape)]
    if min(len(q), len(k), len(v)) < 2:
        raise ValueError(f"scaled_dot_product_attention of shapes {q}, {k}, {v}: need at least 2 dimensions each")
    if q[-1] != k[-1] or k[-2] != v[-2]:
        raise ValueError(f"scaled_dot_product_attention of shapes q {q}, k {k}, v {v}: q and k need the same "
                         "last dimension, k and v the same sequence length")
    leading = list(map(int, out_shape))[:-2] if out_shape is not None else q[:-2]
    length, source, embed, value_embed = q[-2], k[-2], q[-1], v[-1]
    return prod(leading) * length * source * (embed + value_embed)


def scaled_dot_product_attention_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Handle of ``aten::scaled_dot_product_attention(query, key, value, attn_mask, ...)``
    (:func:`scaled_dot_product_attention_flops`)."""
    op = "aten::scaled_dot_product_attention"
    q, k, v = (_shape(x, op, name) for x, name in zip(inputs[:3], ("query", "key", "value")))
    out = get_shape(outputs[0]) if outputs else None
    return scaled_dot_product_attention_flops(q, k, v, out)


def batch_norm_flop_jit(inputs: List[Any], outputs: List[Any]) -> typing.Counter[str]:
    """Handle of ``aten::batch_norm``: nothing in eval mode (a per-channel scale and shift, see the
    module docstring), fvcore's count (5 FLOPs per element with affine parameters) in training mode."""
    training = inputs[5].toIValue()
    if not isinstance(training, bool):
        raise ValueError("FLOP count of aten::batch_norm: its 6th input (training) is not a constant bool; "
                         "the operator's signature has changed")
    if not training:
        return Counter()
    return Counter({"batch_norm": batchnorm_flop_jit(inputs, outputs)})


_BUILTIN_HANDLES: Dict[str, Handle] = {
    "aten::mm": matrix_product_handle(0),
    "aten::matmul": matrix_product_handle(0),
    "aten::bmm": matrix_product_handle(0),
    "aten::addmm": matrix_product_handle(1),
    "aten::baddbmm": matrix_product_handle(1),
    "aten::addbmm": matrix_product_handle(1),
    "aten::scaled_dot_product_attention": scaled_dot_product_attention_flop_jit,
    "aten::batch_norm": batch_norm_flop_jit,
}
_registered: Dict[str, Handle] = {}


def register_flop_handle(op_name: str, handle: Handle) -> Handle:
    """Register ``handle`` for the traced operator ``op_name`` (e.g. ``"mask2former::ms_deform_attn"``),
    so :class:`segcore.analysis.FlopCountAnalysis` counts it. Registering the same handle again is a
    no-op; returns ``handle``.

    Raises:
        ValueError: ``op_name`` is not ``namespace::name``, or it has another handle already (a
            built-in one or one registered before).
    """
    if "::" not in op_name:
        raise ValueError(f"register_flop_handle: operator name must be 'namespace::name', got {op_name!r}")
    existing = _registered.get(op_name, _BUILTIN_HANDLES.get(op_name))
    if existing is not None and existing is not handle:
        raise ValueError(f"register_flop_handle: {op_name} already has a FLOP handle ({existing!r})")
    _registered[op_name] = handle
    return handle


def flop_handle_table() -> Dict[str, Handle]:
    """The handles :class:`segcore.analysis.FlopCountAnalysis` adds to (or replaces in) fvcore's:
    the built-in ones of this module and those registered with :func:`register_flop_handle`."""
    return {**_BUILTIN_HANDLES, **_registered}
