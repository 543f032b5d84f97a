"""Name rules between Hugging Face transformers' ``Mask2FormerForUniversalSegmentation`` and this
project's Mask2Former (see :mod:`mask2former.convert` for what each rule stands for).

A :class:`Rule` maps one family of Hugging Face names to ours; a rule with ``parts`` > 1 says the
Hugging Face tensor is one row block of our fused tensor (q / k / v projections). Entries that only
one side has are listed apart (``*_HF_ONLY``) with the value written for them on the way back.
"""
from __future__ import annotations

import re
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

__all__ = ["HEAD_RULES", "HF_BACKBONE_PREFIX", "HFOnly", "OUR_BACKBONE_PREFIX", "RESNET_HF_ONLY", "RESNET_RULES",
           "Rule", "SWIN_HF_ONLY", "SWIN_RULES", "hf_only_fill", "map_hf_name", "prefixed_rules"]

#: the prefix of the backbone inside Mask2FormerForUniversalSegmentation, and ours
HF_BACKBONE_PREFIX = "model.pixel_level_module.encoder."
OUR_BACKBONE_PREFIX = "backbone."


class Rule(NamedTuple):
    """One name correspondence.

    ``hf`` is a regular expression that must match a whole Hugging Face name; ``ours`` the
    :func:`re.sub`-style template (or a function of the match) giving our name. When ``parts`` > 1,
    the HF tensor is row block ``part`` of ``parts`` equal blocks (dim 0) of our fused tensor.
    """

    hf: str
    ours: Union[str, Callable[[re.Match], str]]
    part: Optional[int] = None
    parts: int = 1


#: (a regular expression matching a whole HF name, the function of HF's tensor that fills it)
HFOnly = Tuple[str, Callable[[torch.Tensor], torch.Tensor]]


def prefixed_rules(hf_prefix: str, our_prefix: str, rules: Sequence[Rule]) -> List[Rule]:
    """``rules`` for names inside a module: ``hf_prefix`` before every HF name, ``our_prefix``
    before every one of ours (e.g. a backbone's rules inside the whole model)."""
    def template(rule: Rule):
        if callable(rule.ours):
            return lambda m, f=rule.ours: our_prefix + f(m)
        return our_prefix + rule.ours
    return [Rule(re.escape(hf_prefix) + r.hf, template(r), r.part, r.parts) for r in rules]


# --------------------------------------------------------------------------- Swin
# Names relative to the backbone (SwinBackbone's own state dict): transformers 5 nests the model in
# ``swin.`` and names the projections q/k/v/o_proj, mlp.fc1/fc2 and
# attention.relative_position_bias.*; save_pretrained (and transformers 4) write the older names.
_SWIN = r"(?:swin\.)?"
_BLOCK = _SWIN + r"encoder\.layers\.(\d+)\.blocks\.(\d+)\."
_WB = r"(weight|bias)"
SWIN_RULES: List[Rule] = [
    Rule(_SWIN + r"embeddings\.patch_embeddings\.projection\." + _WB, r"patch_embed.proj.\1"),
    Rule(_SWIN + r"embeddings\.norm\." + _WB, r"patch_embed.norm.\1"),
    Rule(_BLOCK + r"layernorm_before\." + _WB, r"layers.\1.blocks.\2.norm1.\3"),
    Rule(_BLOCK + r"layernorm_after\." + _WB, r"layers.\1.blocks.\2.norm2.\3"),
    Rule(_BLOCK + r"attention\.(?:self|relative_position_bias)\.relative_position_bias_table",
         r"layers.\1.blocks.\2.attn.relative_position_bias_table"),
    # a persistent buffer in transformers 4 only; the same formula as ours
    Rule(_BLOCK + r"attention\.(?:self|relative_position_bias)\.relative_position_index",
         r"layers.\1.blocks.\2.attn.relative_position_index"),
    Rule(_BLOCK + r"attention\.(?:self\.query|q_proj)\." + _WB, r"layers.\1.blocks.\2.attn.qkv.\3", 0, 3),
    Rule(_BLOCK + r"attention\.(?:self\.key|k_proj)\." + _WB, r"layers.\1.blocks.\2.attn.qkv.\3", 1, 3),
    Rule(_BLOCK + r"attention\.(?:self\.value|v_proj)\." + _WB, r"layers.\1.blocks.\2.attn.qkv.\3", 2, 3),
    Rule(_BLOCK + r"attention\.(?:output\.dense|o_proj)\." + _WB, r"layers.\1.blocks.\2.attn.proj.\3"),
    Rule(_BLOCK + r"(?:intermediate\.dense|mlp\.fc1)\." + _WB, r"layers.\1.blocks.\2.mlp.fc1.\3"),
    Rule(_BLOCK + r"(?:output\.dense|mlp\.fc2)\." + _WB, r"layers.\1.blocks.\2.mlp.fc2.\3"),
    Rule(_SWIN + r"encoder\.layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)",
         r"layers.\1.downsample.\2"),
    Rule(r"hidden_states_norms\.stage(\d+)\." + _WB, lambda m: f"norm{int(m.group(1)) - 1}.{m.group(2)}"),
]
#: Swin entries with no counterpart in our backbone, and what ``d2-to-hf`` writes for them: the
#: final LayerNorm of SwinModel feeds only its pooled output (unused by SwinBackbone)
SWIN_HF_ONLY: List[HFOnly] = [
    (_SWIN + r"layernorm\.weight", torch.ones_like),
    (_SWIN + r"layernorm\.bias", torch.zeros_like),
]

# --------------------------------------------------------------------------- ResNet
_RES_BLOCK = r"encoder\.stages\.(\d+)\.layers\.(\d+)\."
_BN = r"(weight|bias|running_mean|running_var)"


def _res(m: re.Match) -> str:
    return f"res{int(m.group(1)) + 2}.{m.group(2)}."


RESNET_RULES: List[Rule] = [
    Rule(r"embedder\.embedder\.convolution\.weight", "stem.conv1.weight"),
    Rule(r"embedder\.embedder\.normalization\." + _BN, r"stem.conv1.norm.\1"),
    Rule(_RES_BLOCK + r"shortcut\.convolution\.weight", lambda m: _res(m) + "shortcut.weight"),
    Rule(_RES_BLOCK + r"shortcut\.normalization\." + _BN, lambda m: _res(m) + f"shortcut.norm.{m.group(3)}"),
    Rule(_RES_BLOCK + r"layer\.(\d+)\.convolution\.weight", lambda m: _res(m) + f"conv{int(m.group(3)) + 1}.weight"),
    Rule(_RES_BLOCK + r"layer\.(\d+)\.normalization\." + _BN,
         lambda m: _res(m) + f"conv{int(m.group(3)) + 1}.norm.{m.group(4)}"),
]
#: BatchNorm's counters have no counterpart in our FrozenBatchNorm2d (written as 0)
RESNET_HF_ONLY: List[HFOnly] = [
    (r".*\.normalization\.num_batches_tracked", torch.zeros_like),
]

# --------------------------------------------------------------------------- pixel decoder, decoder, heads
_PD, _OPD = r"model\.pixel_level_module\.decoder\.", "sem_seg_head.pixel_decoder."
_TM, _OTD = r"model\.transformer_module\.", "sem_seg_head.predictor."
_DL = _TM + r"decoder\.layers\.(\d+)\."
_SELF = _OTD + r"transformer_self_attention_layers.\1."
HEAD_RULES: List[Rule] = [
    Rule(_PD + r"input_projections\.(\d+)\.([01])\." + _WB, _OPD + r"input_proj.\1.\2.\3"),
    Rule(_PD + r"level_embed", _OPD + "transformer.level_embed"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\."
         + _WB, _OPD + r"transformer.encoder.layers.\1.self_attn.\2.\3"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.self_attn_layer_norm\." + _WB, _OPD + r"transformer.encoder.layers.\1.norm1.\2"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.fc1\." + _WB, _OPD + r"transformer.encoder.layers.\1.linear1.\2"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.fc2\." + _WB, _OPD + r"transformer.encoder.layers.\1.linear2.\2"),
    Rule(_PD + r"encoder\.layers\.(\d+)\.final_layer_norm\." + _WB, _OPD + r"transformer.encoder.layers.\1.norm2.\2"),
    Rule(_PD + r"mask_projection\." + _WB, _OPD + r"mask_features.\1"),
    Rule(_PD + r"(adapter|layer)_(\d+)\.0\.weight", _OPD + r"\1_\2.weight"),
    Rule(_PD + r"(adapter|layer)_(\d+)\.1\." + _WB, _OPD + r"\1_\2.norm.\3"),
    Rule(_TM + r"queries_features\.weight", _OTD + "query_feat.weight"),
    Rule(_TM + r"queries_embedder\.weight", _OTD + "query_embed.weight"),
    Rule(_TM + r"level_embed\.weight", _OTD + "level_embed.weight"),
    Rule(_TM + r"input_projections\.(\d+)\." + _WB, _OTD + r"input_proj.\1.\2"),
    Rule(_DL + r"self_attn\.q_proj\." + _WB, _SELF + r"self_attn.in_proj_\2", 0, 3),
    Rule(_DL + r"self_attn\.k_proj\." + _WB, _SELF + r"self_attn.in_proj_\2", 1, 3),
    Rule(_DL + r"self_attn\.v_proj\." + _WB, _SELF + r"self_attn.in_proj_\2", 2, 3),
    Rule(_DL + r"self_attn\.out_proj\." + _WB, _SELF + r"self_attn.out_proj.\2"),
    Rule(_DL + r"self_attn_layer_norm\." + _WB, _SELF + r"norm.\2"),
    Rule(_DL + r"cross_attn\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)",
         _OTD + r"transformer_cross_attention_layers.\1.multihead_attn.\2"),
    Rule(_DL + r"cross_attn_layer_norm\." + _WB, _OTD + r"transformer_cross_attention_layers.\1.norm.\2"),
    Rule(_DL + r"fc1\." + _WB, _OTD + r"transformer_ffn_layers.\1.linear1.\2"),
    Rule(_DL + r"fc2\." + _WB, _OTD + r"transformer_ffn_layers.\1.linear2.\2"),
    Rule(_DL + r"final_layer_norm\." + _WB, _OTD + r"transformer_ffn_layers.\1.norm.\2"),
    Rule(_TM + r"decoder\.layernorm\." + _WB, _OTD + r"decoder_norm.\1"),
    Rule(_TM + r"decoder\.mask_predictor\.mask_embedder\.(\d+)\.0\." + _WB, _OTD + r"mask_embed.layers.\1.\2"),
    Rule(r"class_predictor\." + _WB, _OTD + r"class_embed.\1"),
    Rule(r"criterion\.empty_weight", "criterion.empty_weight"),
]


def map_hf_name(name: str, rules: Sequence[Rule]) -> Optional[Tuple[str, Optional[int], int]]:
    """Our name for the Hugging Face entry ``name``, by the first rule that matches it whole.

    Returns:
        ``(our_name, part, parts)`` (``part`` None for a whole tensor, else the row block of our
        fused tensor split into ``parts``), or None when no rule matches.
    """
    for rule in rules:
        m = re.fullmatch(rule.hf, name)
        if m:
            ours = rule.ours(m) if callable(rule.ours) else m.expand(rule.ours)
            return ours, rule.part, rule.parts
    return None


def hf_only_fill(name: str, hf_only: Sequence[HFOnly]) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """How ``d2-to-hf`` fills the HF entry ``name`` that has no counterpart in our model (a
    function of HF's tensor), or None when ``name`` is not such an entry."""
    for pattern, fill in hf_only:
        if re.fullmatch(pattern, name):
            return fill
    return None
