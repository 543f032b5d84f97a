"""Reports on weights: what a load left missing, unused or mismatched, and which tensors are not finite."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from fvcore.common.checkpoint import _IncompatibleKeys

from .c2_model_loading import group_keys_by_prefix

__all__ = ["format_incompatible_keys", "non_finite_entries"]


def non_finite_entries(weights: Mapping[str, Any]) -> tuple[list[str], int]:
    """The floating-point entries of ``weights`` that hold NaN or infinite values.

    Args:
        weights: name -> ``torch.Tensor`` or ``numpy.ndarray`` (other values are skipped).

    Returns:
        ``(entries, num_float)``: one ``"name (n NaN, m inf of total)"`` per non-finite
        tensor, in the order of ``weights``, and the number of floating-point tensors seen.
    """
    entries, num_float = [], 0
    for name, value in weights.items():
        if isinstance(value, np.ndarray):
            if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.complexfloating)):
                continue
            value = torch.from_numpy(np.ascontiguousarray(value))
        elif not (isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex())):
            continue
        num_float += 1
        finite = torch.isfinite(value)
        if bool(finite.all()):
            continue
        nan = int(torch.isnan(value).sum())
        entries.append(f"{name} ({nan} NaN, {int((~finite).sum()) - nan} inf of {value.numel()})")
    return entries, num_float


def format_incompatible_keys(incompatible: _IncompatibleKeys, sources: dict[str, str] | None = None) -> str:
    """A plain-text report: one line per shape-mismatched key, and per module of missing and
    unexpected keys (grouped as Detectron2's ``get_missing_parameters_message``:
    ``backbone.res2.0.conv1.{bias, weight}``).

    Args:
        incompatible: ``(missing_keys, unexpected_keys, incorrect_shapes)`` as returned by
            :meth:`Checkpointer._load_model`; ``incorrect_shapes`` holds
            ``(model key, shape in checkpoint, shape in model)``.
        sources: model key -> checkpoint key, for shape mismatches found by name matching
            whose checkpoint key differs from the model key.

    Returns:
        str: an empty string when nothing differs.
    """
    sources = sources or {}
    lines = []
    for key, shape_checkpoint, shape_model in incompatible.incorrect_shapes:
        src = sources.get(key, key)
        name = key if src == key else f"{key} (checkpoint key '{src}')"
        lines.append(
            f"  shape mismatch (not loaded): {name}: {tuple(shape_checkpoint)} in the checkpoint, "
            f"{tuple(shape_model)} in the model"
        )
    lines.extend(f"  missing in the checkpoint: {k}" for k in group_keys_by_prefix(incompatible.missing_keys))
    lines.extend(
        f"  unexpected in the checkpoint (unused): {k}" for k in group_keys_by_prefix(incompatible.unexpected_keys)
    )
    return "\n".join(lines)


