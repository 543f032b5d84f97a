"""Mask2Former's part in exporting models (:mod:`segcore.export`): its operator
``mask2former::ms_deform_attn`` is declared with the module that registers it (``mask2former.ops``,
which a ``.pt2`` program needs imported) and its ONNX form (standard ``GridSample`` nodes, the
computation of the pure-PyTorch reference: :mod:`.onnx_ms_deform_attn`). Importing
:mod:`mask2former` declares it; nothing here imports onnx or onnxscript.
"""
from segcore.export.custom_ops import register_custom_op

from .onnx_ms_deform_attn import ms_deform_attn_onnx

__all__ = ["ms_deform_attn_onnx"]

register_custom_op("mask2former::ms_deform_attn", import_name="mask2former.ops", onnx_translation=ms_deform_attn_onnx)
