"""Name-matching heuristics for pretrained weights (Detectron2's ``c2_model_loading``).

Pretrained files name their weights relative to the network they come from (``res2.0.conv1.weight``
in an ImageNet ResNet, ``layers.0.blocks.0.attn.qkv.weight`` in a Swin classifier), while the
segmentation model nests the same module deeper (``backbone.res2.0.conv1.weight``).
:func:`align_and_update_state_dicts` renames the checkpoint keys to the model's, as Detectron2's
``detectron2/checkpoint/c2_model_loading.py`` does:

* every model key takes the **longest** checkpoint key that equals it or is a suffix of it
  starting after a dot (``conv1.weight`` matches ``backbone.stem.conv1.weight``, never
  ``backbone.stem.myconv1.weight``);
* a match whose shape differs from the model's is not loaded (reported);
* one checkpoint key loaded into two model keys is an error (:class:`AmbiguousMatchError`);
* Caffe2 / Detectron1 blob names (``res2_0_branch2a_w``, ``res_conv1_bn_s``) are first converted
  to Detectron2 names (:func:`convert_basic_c2_names`; backbone names only).
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "AmbiguousMatchError",
    "MatchResult",
    "align_and_update_state_dicts",
    "convert_basic_c2_names",
    "group_keys_by_prefix",
]

logger = logging.getLogger(__name__)


class AmbiguousMatchError(ValueError):
    """One checkpoint key is the best match of two model keys (as Detectron2, an error)."""


@dataclass
class MatchResult:
    """The outcome of :func:`align_and_update_state_dicts`.

    Attributes:
        state_dict: model key -> checkpoint value, for the matches of equal shape.
        matched: model key -> checkpoint key (original name) for those matches.
        incorrect_shapes: ``(model key, checkpoint key, shape in checkpoint, shape in model)``
            for matches that were not loaded because the shapes differ.
        unused: checkpoint keys (original names) whose value went into no model key.
    """

    state_dict: dict[str, Any] = field(default_factory=dict)
    matched: dict[str, str] = field(default_factory=dict)
    incorrect_shapes: list[tuple[str, str, tuple, tuple]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


# Caffe2 blob names -> Detectron2 names, applied in order after "_" -> "." (backbones only).
_C2_RULES: tuple[tuple[str, str], ...] = (
    (r"\.b$", ".bias"),
    (r"\.w$", ".weight"),
    (r"bn\.s$", "norm.weight"),
    (r"bn\.bias$", "norm.bias"),
    (r"bn\.rm$", "norm.running_mean"),
    (r"bn\.running\.mean$", "norm.running_mean"),
    (r"bn\.riv$", "norm.running_var"),
    (r"bn\.running\.var$", "norm.running_var"),
    (r"bn\.gamma$", "norm.weight"),
    (r"bn\.beta$", "norm.bias"),
    (r"gn\.s$", "norm.weight"),
    (r"gn\.bias$", "norm.bias"),
    (r"^res\.conv1\.norm\.", "conv1.norm."),
    (r"^conv1\.", "stem.conv1."),  # the stem only: "conv1" alone is ambiguous in heads
    (r"\.branch1\.", ".shortcut."),
    (r"\.branch2a\.", ".conv1."),
    (r"\.branch2b\.", ".conv2."),
    (r"\.branch2c\.", ".conv3."),
)


def convert_basic_c2_names(original_keys: Iterable[str]) -> list[str]:
    """Convert Caffe2 backbone blob names to Detectron2 names (as Detectron2's function of that name).

    Example: ``res2_0_branch2a_w`` -> ``res2.0.conv1.weight``, ``res_conv1_bn_s`` ->
    ``stem.conv1.norm.weight``, ``res3_0_branch1_bn_b`` -> ``res3.0.shortcut.norm.bias``.
    Detection-head names (RPN, box and mask heads) are not converted.

    Args:
        original_keys: Caffe2 names.

    Returns:
        list[str]: the converted names, in the same order.
    """
    out = []
    for key in original_keys:
        key = {"pred_b": "linear_b", "pred_w": "linear_w"}.get(key, key).replace("_", ".")
        for pattern, repl in _C2_RULES:
            key = re.sub(pattern, repl, key)
        out.append(key)
    return out


def _dot_suffixes(key: str):
    """``a.b.c`` -> ``a.b.c``, ``b.c``, ``c`` (longest first)."""
    yield key
    pos = key.find(".")
    while pos >= 0:
        yield key[pos + 1:]
        pos = key.find(".", pos + 1)


def align_and_update_state_dicts(
    model_state_dict: Mapping[str, Any], ckpt_state_dict: Mapping[str, Any], c2_conversion: bool = False
) -> MatchResult:
    """Match checkpoint keys to model keys by the longest dot-aligned suffix.

    As Detectron2's ``align_and_update_state_dicts`` (see the module docstring), with the
    result returned as a :class:`MatchResult` instead of an updated dict.

    Args:
        model_state_dict: the model's ``state_dict()`` (only names and ``.shape`` are used).
        ckpt_state_dict: checkpoint name -> tensor (anything with ``.shape``).
        c2_conversion: convert Caffe2 blob names first (:func:`convert_basic_c2_names`).

    Returns:
        MatchResult: the renamed weights of equal shape and what was not loaded.

    Raises:
        AmbiguousMatchError: a checkpoint key is the best, shape-compatible match of two model
            keys; the message names the checkpoint key and both model keys.
        ValueError: ``c2_conversion`` maps two checkpoint names to the same name.
    """
    original_keys = list(ckpt_state_dict)
    renamed = convert_basic_c2_names(original_keys) if c2_conversion else list(original_keys)
    if len(set(renamed)) != len(renamed):
        dup = sorted({k for k in renamed if renamed.count(k) > 1})
        raise ValueError(f"Caffe2 name conversion gives duplicate names: {dup[:5]}")
    to_original = dict(zip(renamed, original_keys))

    result = MatchResult()
    loaded_from: dict[str, str] = {}  # checkpoint key -> model key
    mismatched_exact: set[str] = set()
    for key_model in sorted(model_state_dict):
        key_ckpt = next((s for s in _dot_suffixes(key_model) if s in to_original), None)
        if key_ckpt is None:
            continue
        original = to_original[key_ckpt]
        value = ckpt_state_dict[original]
        shape_model = tuple(model_state_dict[key_model].shape)
        shape_ckpt = tuple(value.shape)
        if shape_model != shape_ckpt:
            result.incorrect_shapes.append((key_model, original, shape_ckpt, shape_model))
            if key_ckpt == key_model:
                mismatched_exact.add(original)
            continue
        if original in loaded_from:
            raise AmbiguousMatchError(
                f"The checkpoint key '{original}' matches two model keys, '{loaded_from[original]}' and "
                f"'{key_model}' (longest dot-aligned suffix, same shape); cannot decide which to load. "
                "Rename the checkpoint keys to the model's names (e.g. with a converter in tools/)."
            )
        loaded_from[original] = key_model
        result.state_dict[key_model] = value
        result.matched[key_model] = original
    result.unused = [k for k in original_keys if k not in loaded_from and k not in mismatched_exact]
    return result


def group_keys_by_prefix(keys: Iterable[str]) -> list[str]:
    """Group names by what precedes their last dot, as fvcore / Detectron2 do in their reports.

    Example: ``["a.b.weight", "a.b.bias", "c"]`` -> ``["a.b.{bias, weight}", "c"]``.

    Returns:
        list[str]: one sorted line per group.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    lines = []
    for key in keys:
        head, dot, tail = key.rpartition(".")
        if dot:
            groups[head].append(tail)
        else:
            lines.append(key)
    for head, tails in groups.items():
        if len(tails) == 1:
            lines.append(f"{head}.{tails[0]}")
        else:
            lines.append(f"{head}.{{{', '.join(sorted(tails))}}}")
    return sorted(lines)
