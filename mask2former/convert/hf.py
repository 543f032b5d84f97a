"""State dicts between Hugging Face's ``Mask2FormerForUniversalSegmentation`` and our Mask2Former,
both ways, by the rules of :mod:`.hf_names` and the backbone adapters of :mod:`.hf_backbones`."""
from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Tuple

import torch

from .hf_backbones import BACKBONES, HFBackbone, backbone_for_hf_config
from .hf_names import HEAD_RULES, OUR_BACKBONE_PREFIX, hf_only_fill, map_hf_name

__all__ = ["ConversionResult", "convert_d2_to_hf", "convert_hf_to_d2", "flip_input_channels"]

#: our entries that Hugging Face's model does not need (computed buffers, BatchNorm counters)
_OURS_ONLY = r"relative_position_index$|num_batches_tracked$"


class ConversionResult(NamedTuple):
    """What :func:`convert_hf_to_d2` returns."""

    state_dict: Dict[str, torch.Tensor]  #: our name -> tensor
    sources: Dict[str, List[str]]  #: our name -> the HF names it was made from ([] when computed)
    dropped: List[str]  #: HF entries with no counterpart (unused by Mask2Former)


def convert_hf_to_d2(hf_state: Dict[str, torch.Tensor], config) -> ConversionResult:
    """Rename (and fuse) a Hugging Face ``Mask2FormerForUniversalSegmentation`` state dict into ours.

    Args:
        hf_state: {HF name: tensor}, with either naming of the Swin blocks (the live state dict of
            transformers 5, or what ``save_pretrained`` and transformers 4 write).
        config: its ``transformers.Mask2FormerConfig`` (chooses the backbone's names).

    Returns:
        :class:`ConversionResult`.

    Raises:
        UnsupportedModelError: an unsupported backbone.
        ValueError: an HF entry that no rule maps (named), two entries for one of ours, or a
            fused tensor with a missing or differently shaped part.
    """
    backbone = backbone_for_hf_config(config)
    rules = backbone.rules() + HEAD_RULES
    hf_only = backbone.hf_only()
    ours: Dict[str, torch.Tensor] = {}
    sources: Dict[str, List[str]] = {}
    pieces: Dict[str, Dict[int, Tuple[str, torch.Tensor]]] = {}
    dropped: List[str] = []
    for name, tensor in hf_state.items():
        mapped = map_hf_name(name, rules)
        if mapped is None:
            if hf_only_fill(name, hf_only) is not None:
                dropped.append(name)
                continue
            raise ValueError(f"cannot map the Hugging Face parameter '{name}' {tuple(tensor.shape)} to this "
                             "project's Mask2Former (unknown name: another model, head or transformers version?)")
        our_name, part, parts = mapped
        if part is None:
            if our_name in ours:
                raise ValueError(f"'{name}' and '{sources[our_name][0]}' both map to '{our_name}'")
            ours[our_name], sources[our_name] = tensor, [name]
        else:
            slot = pieces.setdefault(our_name, {})
            if part in slot:
                raise ValueError(f"'{name}' and '{slot[part][0]}' both map to part {part} of '{our_name}'")
            slot[part] = (name, tensor)
            if len(slot) == parts:
                names = [slot[i][0] for i in range(parts)]
                shapes = {tuple(slot[i][1].shape) for i in range(parts)}
                if len(shapes) != 1:
                    raise ValueError(f"the parts of '{our_name}' differ in shape: "
                                     + ", ".join(f"{n} {tuple(slot[i][1].shape)}" for i, n in enumerate(names)))
                ours[our_name] = torch.cat([slot[i][1] for i in range(parts)], dim=0)
                sources[our_name] = names
                del pieces[our_name]
    if pieces:
        incomplete = {k: sorted(v[i][0] for i in v) for k, v in pieces.items()}
        raise ValueError(f"incomplete fused tensors (a q/k/v projection is missing): {incomplete}")
    for name, value in backbone.derived_entries(ours).items():
        if name in ours:
            if not torch.equal(ours[name].to(value.dtype), value):
                raise ValueError(f"'{sources[name][0]}' differs from the relative position index of its window")
        else:
            ours[name], sources[name] = value, []
    return ConversionResult(ours, sources, dropped)


def convert_d2_to_hf(ours: Dict[str, torch.Tensor], hf_reference: Dict[str, torch.Tensor],
                     backbone_type: str) -> Dict[str, torch.Tensor]:
    """Fill every entry of a Hugging Face state dict (``hf_reference``: names, shapes, dtypes, e.g.
    a freshly built model's, possibly on the meta device) from our state dict ``ours``.

    HF entries with no counterpart (:data:`~.hf_names.SWIN_HF_ONLY`, :data:`~.hf_names.RESNET_HF_ONLY`)
    get their fill value; our computed buffers (``relative_position_index``, BatchNorm counters)
    are not needed.

    Args:
        ours: our {name: tensor} (RGB input: see :func:`flip_input_channels` for a BGR model).
        hf_reference: HF's {name: tensor} to fill.
        backbone_type: HF's ``backbone_config.model_type`` ("swin" or "resnet").

    Returns:
        {HF name: tensor} in ``hf_reference``'s dtypes (copies, on the CPU).

    Raises:
        ValueError: an HF entry no rule maps, one of ours that is missing, a shape that differs (both
            names given), or entries of ours left unused.
    """
    backbone = BACKBONES[backbone_type]
    rules = backbone.rules() + HEAD_RULES
    hf_only = backbone.hf_only()
    out: Dict[str, torch.Tensor] = {}
    used = set()
    for name, ref in hf_reference.items():
        mapped = map_hf_name(name, rules)
        if mapped is None:
            fill = hf_only_fill(name, hf_only)
            if fill is None:
                raise ValueError(f"the Hugging Face model has an entry '{name}' {tuple(ref.shape)} that this tool "
                                 "cannot fill (another transformers version?)")
            out[name] = fill(torch.empty(ref.shape, dtype=ref.dtype))  # ref may be on the meta device
            continue
        our_name, part, parts = mapped
        if our_name not in ours:
            raise ValueError(f"our weights lack '{our_name}' (needed for the Hugging Face entry '{name}')")
        value = ours[our_name]
        if part is not None:
            if value.shape[0] % parts:
                raise ValueError(f"'{our_name}' {tuple(value.shape)} does not split into {parts} row blocks for '{name}'")
            value = value.chunk(parts, dim=0)[part]
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f"shape mismatch: '{our_name}'{'' if part is None else f' (part {part} of {parts})'} "
                             f"{tuple(value.shape)} for the Hugging Face entry '{name}' {tuple(ref.shape)}")
        out[name] = value.to(ref.dtype).clone()
        used.add(our_name)
    leftover = sorted(k for k in ours if k not in used and not re.search(_OURS_ONLY, k))
    if leftover:
        raise ValueError(f"entries of our weights that the Hugging Face model has no place for: {leftover}")
    return out


def flip_input_channels(ours: Dict[str, torch.Tensor], backbone: HFBackbone) -> Dict[str, torch.Tensor]:
    """A BGR model's state dict with the first convolution's input channels reversed, so that the
    model reads RGB images (as Hugging Face's does); the other entries are shared, not copied."""
    name = OUR_BACKBONE_PREFIX + backbone.first_conv
    return {**ours, name: ours[name].flip(1)}
