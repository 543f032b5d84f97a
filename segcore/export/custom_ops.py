"""What the exporters need to know about a model family's own operators (``torch.library`` ops).

A family whose network calls an operator of its own registers it here:

- its ONNX form (:func:`register_onnx_translation`): an onnxscript function that writes the
  operator in standard ONNX operators, given to ``torch.onnx.export``'s dynamo-based exporter as a
  custom translation. Without one, :func:`segcore.export.export_model` refuses the ONNX export
  with an :class:`~segcore.export.ExportError` naming the operator and the module that calls it.
- the module that registers the operator (``import_name``): a ``.pt2`` program that contains the
  operator loads only after that import (``export_info.json`` lists it, and
  :class:`~segcore.export.ExportedPredictor` imports it), without importing the model code.

Registration is by operator, so it holds for every model that uses the operator; it imports
nothing (the translation functions import onnxscript themselves, when the exporter calls them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

__all__ = ["CustomOp", "custom_op", "register_custom_op", "registered_custom_ops"]


@dataclass(frozen=True)
class CustomOp:
    """A family's operator as the exporters see it.

    Attributes:
        name: the operator's qualified name, ``"namespace::name"`` (e.g. ``"mask2former::ms_deform_attn"``).
        import_name: the module whose import registers the operator (e.g. ``"mask2former.ops"``).
        onnx_translation: a function of the operator's arguments (ONNX values) that returns its
            ONNX value(s), built with onnxscript's opsets; ``None`` when it has no ONNX form.
    """

    name: str
    import_name: str
    onnx_translation: Optional[Callable[..., Any]] = None


_CUSTOM_OPS: Dict[str, CustomOp] = {}


def register_custom_op(name: str, *, import_name: str, onnx_translation: Optional[Callable[..., Any]] = None) -> None:
    """Declare the operator ``name`` ("namespace::name") to the exporters (see the module's docstring).

    Raises:
        ValueError: ``name`` is not "namespace::name", or another declaration of it differs.
    """
    if name.count("::") != 1:
        raise ValueError(f"register_custom_op: the operator's name must be 'namespace::name', got {name!r}")
    op = CustomOp(name, import_name, onnx_translation)
    if _CUSTOM_OPS.get(name, op) != op:
        raise ValueError(f"register_custom_op: {name} is already declared differently ({_CUSTOM_OPS[name]})")
    _CUSTOM_OPS[name] = op


def custom_op(name: str) -> Optional[CustomOp]:
    """The declaration of operator ``name`` ("namespace::name"), or None."""
    return _CUSTOM_OPS.get(name)


def registered_custom_ops() -> Dict[str, CustomOp]:
    """Every declared operator, by name."""
    return dict(_CUSTOM_OPS)
