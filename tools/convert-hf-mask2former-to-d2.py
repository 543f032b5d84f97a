#!/usr/bin/env python
"""Convert Mask2Former weights between Hugging Face transformers and this project, both ways.

Usage::

    # Hugging Face folder (config.json + model.safetensors / pytorch_model.bin, as save_pretrained
    # writes it) -> a Detectron2 .pkl (or .pth) + a config whose _BASE_ is one of ours
    python tools/convert-hf-mask2former-to-d2.py hf-to-d2 path/to/hf_folder m2f.pkl \\
        [--base-config configs/ade20k/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_160k.yaml] \\
        [--config-out m2f.yaml]
    python demo/demo.py --config-file m2f.yaml --input image.jpg

    # our checkpoint + its config -> a folder that Mask2FormerForUniversalSegmentation.from_pretrained loads
    python tools/convert-hf-mask2former-to-d2.py d2-to-hf model_final.pth out_folder \\
        --config-file configs/coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml [--opts KEY VALUE ...]

Supported backbones: Swin (the Hugging Face default, ``SwinBackbone``) <-> ``D2SwinTransformer``,
and ResNet (``ResNetConfig`` through ``AutoBackbone``; not timm) <-> ``build_resnet_backbone``
(ResNet-18/34 basic blocks, ResNet-50/101/152 bottlenecks, stride in 1x1 or 3x3).

Where the two implementations differ in layout (Hugging Face name -> ours):

* Swin: ``attention.{q,k,v}_proj`` (``attention.self.{query,key,value}`` in files written by
  ``save_pretrained`` and by transformers 4.x) are the three row blocks of our fused
  ``attn.qkv``; ``hidden_states_norms.stage{i}`` is our ``norm{i-1}``; the relative position
  tables are the same tensors; our ``relative_position_index`` buffer is computed from the table
  size; HF's ``swin.layernorm`` only feeds SwinModel's pooled output, which Mask2Former does not
  use: it is dropped (and written as the identity LayerNorm on the way back).
* ResNet: ``embedder.embedder`` is our ``stem.conv1``; ``stages.{s}.layers.{b}.layer.{l}`` is
  ``res{s+2}.{b}.conv{l+1}`` and ``shortcut`` ``shortcut``; ``convolution``/``normalization``
  are the conv and its ``norm``; BatchNorm's ``num_batches_tracked`` has no counterpart in our
  FrozenBatchNorm2d (dropped; written as 0).
* Pixel decoder: ``input_projections`` = ``input_proj``; ``level_embed`` =
  ``transformer.level_embed``; encoder ``self_attn_layer_norm``/``fc1``/``fc2``/
  ``final_layer_norm`` = ``norm1``/``linear1``/``linear2``/``norm2``; ``mask_projection`` =
  ``mask_features``; ``adapter_1.{0,1}``/``layer_1.{0,1}`` (nn.Sequential of conv + GroupNorm) =
  ``adapter_1``/``layer_1`` with ``.norm``.
* Transformer decoder: self-attention ``{q,k,v}_proj`` = row blocks of our
  ``nn.MultiheadAttention`` ``in_proj_weight``/``in_proj_bias`` (both scale q by head_dim^-0.5);
  ``cross_attn`` is an ``nn.MultiheadAttention`` on both sides; ``{self_attn,cross_attn}_layer_norm``
  = the ``norm`` of our ``transformer_{self,cross}_attention_layers``; ``fc1``/``fc2``/
  ``final_layer_norm`` = ``transformer_ffn_layers.{linear1,linear2,norm}``; ``layernorm`` =
  ``decoder_norm``; ``queries_features`` = ``query_feat`` (content), ``queries_embedder`` =
  ``query_embed`` (positions); ``mask_predictor.mask_embedder.{i}.0`` = ``mask_embed.layers.{i}``;
  ``class_predictor`` = ``class_embed``; ``criterion.empty_weight`` is the same buffer.

Numeric conventions, checked to agree: both normalize with the ImageNet mean / std (HF's image
processor: x / 255 then (x - 0.485) / 0.229 ..., ours (x - 123.675) / 58.395 ...), in RGB order;
both use normalized sine position encodings (eps 1e-6, scale 2 pi) without padding masks;
boolean attention masks are True where attention is blocked, a query whose mask is empty
attends everywhere, and the per-head copies are laid out image-major in both. Neither model
masks padding. Sizes: ours pads the batch to a multiple of 32, while HF's image processor
stretches its resized image to a multiple of 32 (and does nothing with ``do_resize=False``), so
the outputs agree for images whose sides are multiples of 32.

``hf-to-d2`` refuses any Hugging Face entry it cannot map (the error names it), and any config
feature our model cannot reproduce (e.g. absolute position embeddings in Swin, another decoder
activation); it checks every converted name and shape against our model built from the written
config. ``d2-to-hf`` needs transformers; it builds the Hugging Face model from the translated
config, fills every one of its entries from our checkpoint (refusing shape mismatches and our
entries left over) and writes it with ``save_pretrained`` plus a ``preprocessor_config.json``
with our normalization.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pickle
import re
import shlex
import sys
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402
import yaml  # noqa: E402

logger = logging.getLogger("convert-hf-mask2former-to-d2")

__all__ = [
    "Rule", "SWIN_RULES", "SWIN_HF_ONLY", "RESNET_RULES", "RESNET_HF_ONLY", "HEAD_RULES",
    "UnsupportedModelError", "ConversionResult", "map_hf_name", "hf_only_fill", "load_hf_checkpoint",
    "hf_config_to_overrides", "convert_hf_to_d2", "check_against_model", "write_d2_checkpoint",
    "write_config_yaml", "hf_config_from_cfg", "convert_d2_to_hf", "main",
]

#: the prefix of the backbone inside Mask2FormerForUniversalSegmentation, and ours
HF_BACKBONE_PREFIX = "model.pixel_level_module.encoder."
OUR_BACKBONE_PREFIX = "backbone."
#: written into a .pkl's ``__author__``
AUTHOR = "huggingface-transformers (tools/convert-hf-mask2former-to-d2.py)"
#: HF's Mask2Former encoder samples 4 points per head and level over 3 levels (constants of its code)
HF_ENCODER_POINTS = 4
HF_NUM_FEATURE_LEVELS = 3
#: the LayerNorm epsilon of our Swin (nn.LayerNorm's default)
OUR_LAYER_NORM_EPS = 1e-5
#: our base configs, by backbone, when --base-config is not given (COCO panoptic: the HF default model's task)
DEFAULT_BASE_CONFIGS = {
    "swin": "configs/coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml",
    "resnet": "configs/coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml",
}
_STAGES = ["stage1", "stage2", "stage3", "stage4"]
_RES = ["res2", "res3", "res4", "res5"]


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


def _prefixed(hf_prefix: str, our_prefix: str, rules: Sequence[Rule]) -> List[Rule]:
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
SWIN_HF_ONLY: List[Tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
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
RESNET_HF_ONLY: List[Tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
    (r".*\.normalization\.num_batches_tracked", torch.zeros_like),
]

# --------------------------------------------------------------------------- pixel decoder, decoder, heads
_PD, _OPD = r"model\.pixel_level_module\.decoder\.", "sem_seg_head.pixel_decoder."
_TM, _OTD = r"model\.transformer_module\.", "sem_seg_head.predictor."
_DL = _TM + r"decoder\.layers\.(\d+)\."
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
    Rule(_DL + r"self_attn\.q_proj\." + _WB, _OTD + r"transformer_self_attention_layers.\1.self_attn.in_proj_\2", 0, 3),
    Rule(_DL + r"self_attn\.k_proj\." + _WB, _OTD + r"transformer_self_attention_layers.\1.self_attn.in_proj_\2", 1, 3),
    Rule(_DL + r"self_attn\.v_proj\." + _WB, _OTD + r"transformer_self_attention_layers.\1.self_attn.in_proj_\2", 2, 3),
    Rule(_DL + r"self_attn\.out_proj\." + _WB, _OTD + r"transformer_self_attention_layers.\1.self_attn.out_proj.\2"),
    Rule(_DL + r"self_attn_layer_norm\." + _WB, _OTD + r"transformer_self_attention_layers.\1.norm.\2"),
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


class UnsupportedModelError(ValueError):
    """A configuration (HF's or ours) that the other implementation cannot reproduce; the message
    lists every feature found."""


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


def hf_only_fill(name: str, hf_only) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """How ``d2-to-hf`` fills the HF entry ``name`` that has no counterpart in our model (a
    function of HF's tensor), or None when ``name`` is not such an entry."""
    for pattern, fill in hf_only:
        if re.fullmatch(pattern, name):
            return fill
    return None


# --------------------------------------------------------------------------- backbones
class _Backbone:
    """What differs between the supported backbones: names, config keys, derived entries."""

    hf_model_type = ""
    our_name = ""  # MODEL.BACKBONE.NAME
    first_conv = ""  # our name of the convolution that reads the image

    def rules(self) -> List[Rule]:
        """The backbone's rules with full names (HF's inside Mask2FormerForUniversalSegmentation, ours in the model)."""
        raise NotImplementedError

    def hf_only(self) -> list:
        """(full-name pattern, fill) of the HF backbone entries without a counterpart in ours."""
        raise NotImplementedError

    def overrides(self, bcfg, problems: List[str]) -> Dict[str, object]:
        """Our ``MODEL.*`` keys for the HF backbone config ``bcfg``; unsupported features go to ``problems``."""
        raise NotImplementedError

    def strides(self, bcfg) -> List[int]:
        """The strides (pixels) of the four stages of the HF backbone config ``bcfg``."""
        raise NotImplementedError

    def hf_config(self, cfg, problems: List[str]):
        """The transformers backbone config of our ``cfg``; unsupported features go to ``problems``."""
        raise NotImplementedError

    def derived_entries(self, ours: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Our entries that HF does not store, computed from the others."""
        return {}


def _check_out_features(out_features, problems: List[str], model: str) -> None:
    if list(out_features or []) != _STAGES:
        problems.append(f"{model} backbone out_features={out_features}: Mask2Former reads all four stages {_STAGES}")


class _SwinBackbone(_Backbone):
    hf_model_type = "swin"
    our_name = "D2SwinTransformer"
    first_conv = "patch_embed.proj.weight"

    def rules(self):
        return _prefixed(HF_BACKBONE_PREFIX, OUR_BACKBONE_PREFIX, SWIN_RULES)

    def hf_only(self):
        return [(re.escape(HF_BACKBONE_PREFIX) + p, f) for p, f in SWIN_HF_ONLY]

    def strides(self, bcfg):
        return [bcfg.patch_size * 2 ** i for i in range(len(bcfg.depths))]

    def overrides(self, bcfg, problems):
        if bcfg.use_absolute_embeddings:
            problems.append("Swin use_absolute_embeddings=True: HF adds a fixed-size table (no interpolation) where "
                            "our APE interpolates a (1, C, H, W) table; not convertible")
        if bcfg.hidden_act != "gelu":
            problems.append(f"Swin hidden_act='{bcfg.hidden_act}': our Swin MLP uses GELU")
        if not math.isclose(bcfg.layer_norm_eps, OUR_LAYER_NORM_EPS, rel_tol=1e-6):
            problems.append(f"Swin layer_norm_eps={bcfg.layer_norm_eps}: our Swin LayerNorms use {OUR_LAYER_NORM_EPS}")
        if bcfg.num_channels != 3:
            problems.append(f"Swin num_channels={bcfg.num_channels}: our models read 3-channel images")
        if len(bcfg.depths) != 4:
            problems.append(f"Swin with {len(bcfg.depths)} stages: Mask2Former reads 4 (res2..res5)")
        _check_out_features(bcfg.out_features, problems, "Swin")
        return {
            "MODEL.BACKBONE.NAME": self.our_name,
            "MODEL.SWIN.PRETRAIN_IMG_SIZE": int(bcfg.image_size if isinstance(bcfg.image_size, int)
                                                else bcfg.image_size[0]),
            "MODEL.SWIN.PATCH_SIZE": int(bcfg.patch_size),
            "MODEL.SWIN.EMBED_DIM": int(bcfg.embed_dim),
            "MODEL.SWIN.DEPTHS": [int(d) for d in bcfg.depths],
            "MODEL.SWIN.NUM_HEADS": [int(h) for h in bcfg.num_heads],
            "MODEL.SWIN.WINDOW_SIZE": int(bcfg.window_size),
            "MODEL.SWIN.MLP_RATIO": float(bcfg.mlp_ratio),
            "MODEL.SWIN.QKV_BIAS": bool(bcfg.qkv_bias),
            "MODEL.SWIN.QK_SCALE": None,
            "MODEL.SWIN.DROP_RATE": float(bcfg.hidden_dropout_prob),
            "MODEL.SWIN.ATTN_DROP_RATE": float(bcfg.attention_probs_dropout_prob),
            "MODEL.SWIN.DROP_PATH_RATE": float(bcfg.drop_path_rate),
            "MODEL.SWIN.APE": False,
            "MODEL.SWIN.PATCH_NORM": True,
            "MODEL.SWIN.OUT_FEATURES": list(_RES),
        }

    def hf_config(self, cfg, problems):
        from transformers import SwinConfig

        s = cfg.MODEL.SWIN
        if s.APE:
            problems.append("MODEL.SWIN.APE=True: HF's absolute position embeddings are not interpolated like ours")
        if not s.PATCH_NORM:
            problems.append("MODEL.SWIN.PATCH_NORM=False: HF's Swin always normalizes the patch embeddings")
        if s.QK_SCALE is not None:
            problems.append(f"MODEL.SWIN.QK_SCALE={s.QK_SCALE}: HF's Swin scales by head_dim^-0.5")
        if list(s.OUT_FEATURES) != _RES:
            problems.append(f"MODEL.SWIN.OUT_FEATURES={list(s.OUT_FEATURES)}: HF's Mask2Former reads {_RES}")
        return SwinConfig(
            image_size=s.PRETRAIN_IMG_SIZE, patch_size=s.PATCH_SIZE, num_channels=3, embed_dim=s.EMBED_DIM,
            depths=list(s.DEPTHS), num_heads=list(s.NUM_HEADS), window_size=s.WINDOW_SIZE, mlp_ratio=s.MLP_RATIO,
            qkv_bias=s.QKV_BIAS, hidden_dropout_prob=s.DROP_RATE, attention_probs_dropout_prob=s.ATTN_DROP_RATE,
            drop_path_rate=s.DROP_PATH_RATE, hidden_act="gelu", use_absolute_embeddings=False,
            layer_norm_eps=OUR_LAYER_NORM_EPS, out_features=list(_STAGES))

    def derived_entries(self, ours):
        from mask_former.modeling.backbone.swin import relative_position_index

        derived = {}
        suffix = "relative_position_bias_table"
        for name, table in ours.items():
            if not name.endswith(suffix):
                continue
            side = math.isqrt(table.shape[0])
            if side * side != table.shape[0] or side % 2 == 0:
                raise ValueError(f"'{name}' has {table.shape[0]} rows, not (2 * window - 1)^2 for a square window")
            window = (side + 1) // 2
            derived[name[: -len(suffix)] + "relative_position_index"] = relative_position_index((window, window))
        return derived


#: (layer type, blocks per stage) -> our MODEL.RESNETS.DEPTH (He et al. 2016, Table 1)
_RESNET_DEPTHS = {("basic", (2, 2, 2, 2)): 18, ("basic", (3, 4, 6, 3)): 34, ("bottleneck", (3, 4, 6, 3)): 50,
                  ("bottleneck", (3, 4, 23, 3)): 101, ("bottleneck", (3, 8, 36, 3)): 152}
#: the bottleneck's channel reduction in HF's ResNet (a constant of its code): width = out / 4
_HF_BOTTLENECK_REDUCTION = 4
_BN_NORMS = ("FrozenBN", "BN", "SyncBN")


class _ResNetBackbone(_Backbone):
    hf_model_type = "resnet"
    our_name = "build_resnet_backbone"
    first_conv = "stem.conv1.weight"

    def rules(self):
        return _prefixed(HF_BACKBONE_PREFIX, OUR_BACKBONE_PREFIX, RESNET_RULES)

    def hf_only(self):
        return [(re.escape(HF_BACKBONE_PREFIX) + p, f) for p, f in RESNET_HF_ONLY]

    def strides(self, bcfg):
        return [4 * 2 ** i for i in range(len(bcfg.depths))] if not bcfg.downsample_in_first_stage else [
            8 * 2 ** i for i in range(len(bcfg.depths))]

    def overrides(self, bcfg, problems):
        depth = _RESNET_DEPTHS.get((bcfg.layer_type, tuple(bcfg.depths)))
        if depth is None:
            problems.append(f"ResNet layer_type='{bcfg.layer_type}' with depths {list(bcfg.depths)}: not one of "
                            f"ResNet-18/34/50/101/152 ({sorted((k[0], list(k[1])) for k in _RESNET_DEPTHS)})")
        widths = list(bcfg.hidden_sizes)
        if widths != [widths[0] * 2 ** i for i in range(len(widths))]:
            problems.append(f"ResNet hidden_sizes={widths}: ours double the width at every stage")
        if bcfg.layer_type == "basic" and widths[0] != 64:
            problems.append(f"ResNet-{depth} with hidden_sizes[0]={widths[0]}: ours needs 64 for basic blocks")
        if bcfg.layer_type == "bottleneck" and widths[0] % _HF_BOTTLENECK_REDUCTION:
            problems.append(f"ResNet hidden_sizes[0]={widths[0]} is not a multiple of {_HF_BOTTLENECK_REDUCTION}")
        if bcfg.downsample_in_first_stage:
            problems.append("ResNet downsample_in_first_stage=True: our res2 keeps the stem's stride")
        if bcfg.hidden_act != "relu":
            problems.append(f"ResNet hidden_act='{bcfg.hidden_act}': ours uses ReLU")
        if bcfg.num_channels != 3:
            problems.append(f"ResNet num_channels={bcfg.num_channels}: our models read 3-channel images")
        _check_out_features(bcfg.out_features, problems, "ResNet")
        return {
            "MODEL.BACKBONE.NAME": self.our_name,
            "MODEL.RESNETS.DEPTH": depth or 50,
            "MODEL.RESNETS.STEM_OUT_CHANNELS": int(bcfg.embedding_size),
            "MODEL.RESNETS.RES2_OUT_CHANNELS": int(widths[0]),
            "MODEL.RESNETS.NUM_GROUPS": 1,
            "MODEL.RESNETS.WIDTH_PER_GROUP": int(widths[0] // _HF_BOTTLENECK_REDUCTION
                                                 if bcfg.layer_type == "bottleneck" else 64),
            "MODEL.RESNETS.STRIDE_IN_1X1": bool(bcfg.downsample_in_bottleneck),
            "MODEL.RESNETS.RES4_DILATION": 1,
            "MODEL.RESNETS.RES5_DILATION": 1,
            "MODEL.RESNETS.NORM": "FrozenBN",
            "MODEL.RESNETS.OUT_FEATURES": list(_RES),
        }

    def hf_config(self, cfg, problems):
        from transformers import ResNetConfig

        r = cfg.MODEL.RESNETS
        layer_type = "basic" if r.DEPTH in (18, 34) else "bottleneck"
        blocks = [k[1] for k, v in _RESNET_DEPTHS.items() if v == r.DEPTH]
        if not blocks:
            problems.append(f"MODEL.RESNETS.DEPTH={r.DEPTH}: not 18/34/50/101/152")
            blocks = [(3, 4, 6, 3)]
        if r.NUM_GROUPS != 1:
            problems.append(f"MODEL.RESNETS.NUM_GROUPS={r.NUM_GROUPS}: HF's ResNet has no grouped convolutions")
        if layer_type == "bottleneck" and r.RES2_OUT_CHANNELS != _HF_BOTTLENECK_REDUCTION * r.WIDTH_PER_GROUP:
            problems.append(f"MODEL.RESNETS.RES2_OUT_CHANNELS={r.RES2_OUT_CHANNELS} is not {_HF_BOTTLENECK_REDUCTION} x "
                            f"WIDTH_PER_GROUP={r.WIDTH_PER_GROUP}: HF's bottleneck width is out_channels / 4")
        if r.RES4_DILATION != 1 or r.RES5_DILATION != 1:
            problems.append("MODEL.RESNETS.RES4_DILATION / RES5_DILATION != 1: HF's ResNet has no dilation")
        if any(r.DEFORM_ON_PER_STAGE):
            problems.append("MODEL.RESNETS.DEFORM_ON_PER_STAGE: HF's ResNet has no deformable convolutions")
        if r.NORM not in _BN_NORMS:
            problems.append(f"MODEL.RESNETS.NORM='{r.NORM}': HF's ResNet uses BatchNorm ({'/'.join(_BN_NORMS)} convert)")
        if list(r.OUT_FEATURES) != _RES:
            problems.append(f"MODEL.RESNETS.OUT_FEATURES={list(r.OUT_FEATURES)}: HF's Mask2Former reads {_RES}")
        return ResNetConfig(
            num_channels=3, embedding_size=r.STEM_OUT_CHANNELS,
            hidden_sizes=[r.RES2_OUT_CHANNELS * 2 ** i for i in range(4)], depths=list(blocks[0]),
            layer_type=layer_type, hidden_act="relu", downsample_in_first_stage=False,
            downsample_in_bottleneck=bool(r.STRIDE_IN_1X1), out_features=list(_STAGES))


_BACKBONES = {b.hf_model_type: b for b in (_SwinBackbone(), _ResNetBackbone())}
_BACKBONES_BY_OUR_NAME = {b.our_name: b for b in _BACKBONES.values()}


def _backbone_for_hf(config) -> _Backbone:
    bcfg = getattr(config, "backbone_config", None)
    model_type = getattr(bcfg, "model_type", None)
    if getattr(config, "use_timm_backbone", False) or model_type not in _BACKBONES:
        raise UnsupportedModelError(
            f"Hugging Face backbone '{model_type}'{' (timm)' if getattr(config, 'use_timm_backbone', False) else ''} "
            f"is not supported; supported: transformers {sorted(_BACKBONES)} (backbone_config.model_type)")
    return _BACKBONES[model_type]


# --------------------------------------------------------------------------- reading HF checkpoints
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def _read_weight_file(path: str) -> Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    if path.endswith(".index.json"):
        with open(path) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: Dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_read_weight_file(os.path.join(os.path.dirname(path), shard)))
        return state
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def load_hf_checkpoint(path: str, config_path: Optional[str] = None):
    """Read a Hugging Face Mask2Former checkpoint as ``save_pretrained`` writes it.

    Args:
        path: the folder, or one weight file (``model.safetensors``, ``pytorch_model.bin``, or a
            sharded checkpoint's ``*.index.json``).
        config_path: ``config.json`` (default: the one next to the weights).

    Returns:
        ``(state, config, preprocessor)``: the file's entries {name: tensor} as stored, the
        ``transformers.Mask2FormerConfig`` and the ``preprocessor_config.json`` dict (None if absent).

    Raises:
        FileNotFoundError: no weight file or no config.json.
        ValueError: the config is not a Mask2Former config.
    """
    from transformers import Mask2FormerConfig

    if os.path.isdir(path):
        found = [os.path.join(path, n) for n in _WEIGHT_FILES if os.path.isfile(os.path.join(path, n))]
        if not found:
            raise FileNotFoundError(f"{path} holds none of {list(_WEIGHT_FILES)}")
        weights, folder = found[0], path
    elif os.path.isfile(path):
        weights, folder = path, os.path.dirname(os.path.abspath(path))
    else:
        raise FileNotFoundError(f"No Hugging Face checkpoint at {path}")
    config_path = config_path or os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"No config.json at {config_path} (pass --hf-config)")
    with open(config_path) as f:
        model_type = json.load(f).get("model_type")
    if model_type != "mask2former":
        raise ValueError(f"{config_path} describes a '{model_type}' model, not 'mask2former'")
    config = Mask2FormerConfig.from_pretrained(config_path)
    preprocessor = None
    pre_path = os.path.join(folder, "preprocessor_config.json")
    if os.path.isfile(pre_path):
        with open(pre_path) as f:
            preprocessor = json.load(f)
    return _read_weight_file(weights), config, preprocessor


# --------------------------------------------------------------------------- hf -> d2
def _pixel_normalization(preprocessor: Optional[dict], notes: List[str]) -> Dict[str, object]:
    """MODEL.PIXEL_MEAN / PIXEL_STD (0..255 units, RGB) of HF's image processor settings."""
    mean, std, scale = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 1 / 255  # HF's Mask2Former processor defaults
    if preprocessor is None:
        notes.append("no preprocessor_config.json: assuming HF's default normalization (ImageNet mean / std)")
    else:
        if not preprocessor.get("do_normalize", True):
            raise UnsupportedModelError("the image processor does not normalize (do_normalize=False); our models do")
        mean = preprocessor.get("image_mean", mean)
        std = preprocessor.get("image_std", std)
        scale = preprocessor.get("rescale_factor", scale) if preprocessor.get("do_rescale", True) else 1.0
        if "size" in preprocessor:
            notes.append(f"HF's image processor resizes to {preprocessor['size']}; set INPUT.MIN_SIZE_TEST / "
                         "MAX_SIZE_TEST to match if needed")
    return {"MODEL.PIXEL_MEAN": [round(m / scale, 4) for m in mean],
            "MODEL.PIXEL_STD": [round(s / scale, 4) for s in std],
            "INPUT.FORMAT": "RGB"}


def hf_config_to_overrides(config, preprocessor: Optional[dict] = None) -> Tuple[Dict[str, object], List[str]]:
    """Our config keys that reproduce a Hugging Face ``Mask2FormerConfig``.

    Args:
        config: ``transformers.Mask2FormerConfig``.
        preprocessor: ``preprocessor_config.json`` as a dict (normalization), or None.

    Returns:
        ``({full key: value}, notes)``: the keys (model sizes, loss settings, backbone, pixel
        normalization), and remarks on settings that do not change inference.

    Raises:
        UnsupportedModelError: features our model cannot reproduce (all are listed).
    """
    problems: List[str] = []
    notes: List[str] = []
    backbone = _backbone_for_hf(config)
    bcfg = config.backbone_config
    overrides = backbone.overrides(bcfg, problems)
    if config.activation_function != "relu":
        problems.append(f"activation_function='{config.activation_function}': our decoder FFN uses ReLU")
    strides = backbone.strides(bcfg)
    if list(config.feature_strides) != strides:
        problems.append(f"feature_strides={list(config.feature_strides)} differ from the backbone's strides {strides}")
    if config.dropout:
        notes.append(f"dropout={config.dropout}: ours applies it in the pixel decoder's encoder only (the original's "
                     "masked-attention decoder has no dropout); inference is unaffected")
    if problems:
        raise UnsupportedModelError("the Hugging Face model uses features this project does not support:\n  - "
                                    + "\n  - ".join(problems))
    overrides.update({
        "MODEL.META_ARCHITECTURE": "MaskFormer",
        "MODEL.SEM_SEG_HEAD.NAME": "MaskFormerHead",
        "MODEL.SEM_SEG_HEAD.NUM_CLASSES": int(config.num_labels),
        "MODEL.SEM_SEG_HEAD.IGNORE_VALUE": int(config.ignore_value),
        "MODEL.SEM_SEG_HEAD.IN_FEATURES": list(_RES),
        "MODEL.SEM_SEG_HEAD.COMMON_STRIDE": int(config.common_stride),
        "MODEL.SEM_SEG_HEAD.CONVS_DIM": int(config.feature_size),
        "MODEL.SEM_SEG_HEAD.MASK_DIM": int(config.mask_feature_size),
        "MODEL.SEM_SEG_HEAD.NORM": "GN",  # HF's FPN convs: conv without bias + GroupNorm(32)
        "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME": "MSDeformAttnPixelDecoder",
        "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS": int(config.encoder_layers),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES": list(_RES[-HF_NUM_FEATURE_LEVELS:]),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": HF_ENCODER_POINTS,
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": int(config.num_attention_heads),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD": int(config.encoder_feedforward_dim),
        "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": "MultiScaleMaskedTransformerDecoder",
        "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE": "multi_scale_pixel_decoder",
        "MODEL.MASK_FORMER.HIDDEN_DIM": int(config.hidden_dim),
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES": int(config.num_queries),
        "MODEL.MASK_FORMER.NHEADS": int(config.num_attention_heads),
        "MODEL.MASK_FORMER.DROPOUT": float(config.dropout),
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD": int(config.dim_feedforward),
        "MODEL.MASK_FORMER.DEC_LAYERS": int(config.decoder_layers),
        "MODEL.MASK_FORMER.PRE_NORM": bool(config.pre_norm),
        "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ": bool(config.enforce_input_projection),
        "MODEL.MASK_FORMER.DEEP_SUPERVISION": bool(config.use_auxiliary_loss),
        "MODEL.MASK_FORMER.NO_OBJECT_WEIGHT": float(config.no_object_weight),
        "MODEL.MASK_FORMER.CLASS_WEIGHT": float(config.class_weight),
        "MODEL.MASK_FORMER.MASK_WEIGHT": float(config.mask_weight),
        "MODEL.MASK_FORMER.DICE_WEIGHT": float(config.dice_weight),
        "MODEL.MASK_FORMER.TRAIN_NUM_POINTS": int(config.train_num_points),
        "MODEL.MASK_FORMER.OVERSAMPLE_RATIO": float(config.oversample_ratio),
        "MODEL.MASK_FORMER.IMPORTANCE_SAMPLE_RATIO": float(config.importance_sample_ratio),
        "MODEL.MASK_FORMER.SIZE_DIVISIBILITY": 32,
    })
    overrides.update(_pixel_normalization(preprocessor, notes))
    return overrides, notes


class ConversionResult(NamedTuple):
    """What :func:`convert_hf_to_d2` returns."""

    state_dict: Dict[str, torch.Tensor]  #: our name -> tensor
    sources: Dict[str, List[str]]  #: our name -> the HF names it was made from ([] when computed)
    dropped: List[str]  #: HF entries with no counterpart (unused by Mask2Former)


def convert_hf_to_d2(hf_state: Dict[str, torch.Tensor], config) -> ConversionResult:
    """Rename (and fuse) a Hugging Face ``Mask2FormerForUniversalSegmentation`` state dict into ours.

    Args:
        hf_state: {HF name: tensor}, with either naming of the Swin blocks (see the module docstring).
        config: its ``transformers.Mask2FormerConfig`` (chooses the backbone's names).

    Returns:
        :class:`ConversionResult`.

    Raises:
        UnsupportedModelError: an unsupported backbone.
        ValueError: an HF entry that no rule maps (named), two entries for one of ours, or a
            fused tensor with a missing or differently shaped part.
    """
    backbone = _backbone_for_hf(config)
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


def check_against_model(state: Dict[str, torch.Tensor], model_state: Dict[str, torch.Tensor],
                        sources: Optional[Dict[str, List[str]]] = None) -> None:
    """Require the converted ``state`` to have exactly the names and shapes of ``model_state``
    (our model's state dict).

    Raises:
        ValueError: names missing from either side, or shapes that differ (with the HF names they came from).
    """
    sources = sources or {}
    missing = sorted(set(model_state) - set(state))
    unexpected = sorted(set(state) - set(model_state))
    shapes = [f"'{k}' {tuple(state[k].shape)} (from {sources.get(k) or 'computed'}) but the model has "
              f"{tuple(model_state[k].shape)}"
              for k in state if k in model_state and tuple(state[k].shape) != tuple(model_state[k].shape)]
    if missing or unexpected or shapes:
        lines = ([f"shape mismatch: {s}" for s in shapes] + [f"missing in the converted weights: {k}" for k in missing]
                 + [f"not in the model: {k} (from {sources.get(k)})" for k in unexpected])
        raise ValueError("the converted weights do not fit the model built from the written config:\n  "
                         + "\n  ".join(lines))


def write_d2_checkpoint(state: Dict[str, torch.Tensor], path: str) -> None:
    """Write our weights: ``.pkl`` -> ``{"model": {name: ndarray}, "__author__", "matching_heuristics": False}``,
    ``.pth`` -> ``{"model": {name: tensor}, "matching_heuristics": False}`` (exact names: nothing is
    renamed when :class:`segcore.checkpoint.Checkpointer` loads it). The file is written atomically.

    Raises:
        ValueError: another suffix.
    """
    from segcore.checkpoint import atomic_write

    ext = os.path.splitext(path)[1].lower()
    if ext == ".pkl":
        data = {"model": {k: v.detach().cpu().numpy() for k, v in state.items()}, "__author__": AUTHOR,
                "matching_heuristics": False}
        atomic_write(path, lambda f: pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL))
    elif ext == ".pth":
        data = {"model": {k: v.detach().cpu().contiguous() for k, v in state.items()}, "matching_heuristics": False}
        atomic_write(path, lambda f: torch.save(data, f))
    else:
        raise ValueError(f"output {path}: use a .pkl (Detectron2) or .pth file name")


def _nested(overrides: Dict[str, object]) -> dict:
    tree: dict = {}
    for key, value in overrides.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


class _ConfigDumper(yaml.SafeDumper):
    """Block-style mappings, flow-style lists (as our config files are written)."""


_ConfigDumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))


def write_config_yaml(overrides: Dict[str, object], path: str, base_config: str, source: str = "") -> None:
    """Write ``overrides`` as a YAML config inheriting ``base_config`` (``_BASE_``: a path relative
    to the YAML's folder when the YAML is inside this repository, else absolute)."""
    base = os.path.abspath(base_config)
    folder = os.path.dirname(os.path.abspath(path))
    inside = os.path.commonpath([folder, _ROOT]) == _ROOT
    header = f"# Written by tools/convert-hf-mask2former-to-d2.py{' from ' + source if source else ''}\n"
    body = yaml.dump({"_BASE_": os.path.relpath(base, folder) if inside else base, **_nested(overrides)},
                     Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False)
    with open(path, "w") as f:
        f.write(header + body)


def _build_our_model(config_file: str, opts: Sequence[str]):
    from segcore.engine import setup_cfg
    from segcore.modeling import build_model

    cfg = setup_cfg(config_file, list(opts) + ["MODEL.DEVICE", "cpu"])
    return cfg, build_model(cfg).eval()


def _hf_to_d2(args) -> dict:
    hf_state, config, preprocessor = load_hf_checkpoint(args.input, args.hf_config)
    overrides, notes = hf_config_to_overrides(config, preprocessor)
    result = convert_hf_to_d2(hf_state, config)
    backbone = _backbone_for_hf(config)
    base = args.base_config or os.path.join(_ROOT, DEFAULT_BASE_CONFIGS[backbone.hf_model_type])
    config_out = args.config_out or os.path.splitext(args.output)[0] + ".yaml"
    overrides["MODEL.WEIGHTS"] = os.path.abspath(args.output)
    write_config_yaml(overrides, config_out, base, source=os.path.abspath(args.input))
    if not args.no_check:
        try:
            _, model = _build_our_model(config_out, [])
            check_against_model(result.state_dict, model.state_dict(), result.sources)
        except Exception:
            os.remove(config_out)  # no config without its weights
            raise
    write_d2_checkpoint(result.state_dict, args.output)
    print(f"Wrote {len(result.state_dict)} weights to {args.output} and the config {config_out} (_BASE_ {base}).")
    print("Config overrides (command-line form, e.g. for train_net.py / demo.py --opts):")
    for key, value in overrides.items():
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, list) else repr(value)
        print(f"  {key} {shlex.quote(text)}")
    if result.dropped:
        print("Dropped (not used by Mask2Former): " + ", ".join(result.dropped))
    for note in notes:
        print("Note: " + note)
    return {"state_dict": result.state_dict, "overrides": overrides, "notes": notes, "dropped": result.dropped,
            "config": config_out}


# --------------------------------------------------------------------------- d2 -> hf
def _metadata_labels(cfg, num_classes: int) -> Optional[Dict[int, str]]:
    from segcore.data import MetadataCatalog

    for name in list(cfg.DATASETS.TEST) + list(cfg.DATASETS.TRAIN):
        if name in MetadataCatalog.list():
            classes = MetadataCatalog.get(name).get("stuff_classes", None)
            if classes is not None and len(classes) == num_classes:
                return dict(enumerate(classes))
    return None


def hf_config_from_cfg(cfg):
    """The ``transformers.Mask2FormerConfig`` of our (Mask2Former) ``cfg``; labels from the
    dataset metadata's ``stuff_classes`` when they match ``NUM_CLASSES``.

    Raises:
        UnsupportedModelError: features HF's Mask2Former cannot reproduce (all are listed).
    """
    from transformers import Mask2FormerConfig

    problems: List[str] = []
    m, head, mf = cfg.MODEL, cfg.MODEL.SEM_SEG_HEAD, cfg.MODEL.MASK_FORMER
    expected = {
        "MODEL.META_ARCHITECTURE": (m.META_ARCHITECTURE, "MaskFormer"),
        "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": (mf.TRANSFORMER_DECODER_NAME, "MultiScaleMaskedTransformerDecoder"),
        "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE": (mf.TRANSFORMER_IN_FEATURE, "multi_scale_pixel_decoder"),
        "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME": (head.PIXEL_DECODER_NAME, "MSDeformAttnPixelDecoder"),
        "MODEL.SEM_SEG_HEAD.IN_FEATURES": (list(head.IN_FEATURES), _RES),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES": (
            list(head.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES), _RES[-HF_NUM_FEATURE_LEVELS:]),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": (
            head.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS, HF_ENCODER_POINTS),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": (
            head.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS, mf.NHEADS),
        "MODEL.SEM_SEG_HEAD.NORM": (head.NORM, "GN"),
    }
    for key, (value, want) in expected.items():
        if value != want:
            problems.append(f"{key}={value!r}: HF's Mask2Former has {want!r}")
    backbone = _BACKBONES_BY_OUR_NAME.get(m.BACKBONE.NAME)
    if backbone is None:
        problems.append(f"MODEL.BACKBONE.NAME='{m.BACKBONE.NAME}': supported: {sorted(_BACKBONES_BY_OUR_NAME)}")
        bcfg = None
    else:
        bcfg = backbone.hf_config(cfg, problems)
    if cfg.INPUT.FORMAT not in ("RGB", "BGR"):
        problems.append(f"INPUT.FORMAT='{cfg.INPUT.FORMAT}': only RGB and BGR images convert")
    if problems:
        raise UnsupportedModelError("the model uses features Hugging Face's Mask2Former does not support:\n  - "
                                    + "\n  - ".join(problems))
    labels = _metadata_labels(cfg, head.NUM_CLASSES)
    label_kwargs = {"id2label": labels} if labels else {"num_labels": head.NUM_CLASSES}
    return Mask2FormerConfig(
        backbone_config=bcfg, feature_size=head.CONVS_DIM, mask_feature_size=head.MASK_DIM, hidden_dim=mf.HIDDEN_DIM,
        encoder_feedforward_dim=head.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD, activation_function="relu",
        encoder_layers=head.TRANSFORMER_ENC_LAYERS, decoder_layers=mf.DEC_LAYERS, num_attention_heads=mf.NHEADS,
        dropout=mf.DROPOUT, dim_feedforward=mf.DIM_FEEDFORWARD, pre_norm=mf.PRE_NORM,
        enforce_input_projection=mf.ENFORCE_INPUT_PROJ, common_stride=head.COMMON_STRIDE,
        ignore_value=head.IGNORE_VALUE, num_queries=mf.NUM_OBJECT_QUERIES, no_object_weight=mf.NO_OBJECT_WEIGHT,
        class_weight=mf.CLASS_WEIGHT, mask_weight=mf.MASK_WEIGHT, dice_weight=mf.DICE_WEIGHT,
        train_num_points=mf.TRAIN_NUM_POINTS, oversample_ratio=mf.OVERSAMPLE_RATIO,
        importance_sample_ratio=mf.IMPORTANCE_SAMPLE_RATIO, use_auxiliary_loss=mf.DEEP_SUPERVISION,
        feature_strides=[4, 8, 16, 32], **label_kwargs)


def convert_d2_to_hf(ours: Dict[str, torch.Tensor], hf_reference: Dict[str, torch.Tensor],
                     backbone_type: str) -> Dict[str, torch.Tensor]:
    """Fill every entry of a Hugging Face state dict (``hf_reference``: names, shapes, dtypes, e.g.
    a freshly built model's) from our state dict ``ours``.

    HF entries with no counterpart (:data:`SWIN_HF_ONLY`, :data:`RESNET_HF_ONLY`) get their fill
    value; our computed buffers (``relative_position_index``, BatchNorm counters) are not needed.

    Raises:
        ValueError: an HF entry no rule maps, one of ours that is missing, a shape that differs (both
            names given), or entries of ours left unused.
    """
    backbone = _BACKBONES[backbone_type]
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
    leftover = sorted(k for k in ours if k not in used and not re.search(r"relative_position_index$|num_batches_tracked$", k))
    if leftover:
        raise ValueError(f"entries of our weights that the Hugging Face model has no place for: {leftover}")
    return out


def _flip_input_channels(ours: Dict[str, torch.Tensor], backbone: _Backbone) -> Dict[str, torch.Tensor]:
    """A BGR model's first convolution with its input channels reversed, so it reads RGB."""
    name = OUR_BACKBONE_PREFIX + backbone.first_conv
    return {**ours, name: ours[name].flip(1)}


def _write_preprocessor(cfg, folder: str) -> None:
    import transformers

    # transformers 5 names the PIL (torchvision-free) processor apart; in 4.x it is the only one
    processor_cls = getattr(transformers, "Mask2FormerImageProcessorPil", None) or transformers.Mask2FormerImageProcessor
    order = [2, 1, 0] if cfg.INPUT.FORMAT == "BGR" else [0, 1, 2]
    mean = [cfg.MODEL.PIXEL_MEAN[i] / 255.0 for i in order]
    std = [cfg.MODEL.PIXEL_STD[i] / 255.0 for i in order]
    size = {"shortest_edge": cfg.INPUT.MIN_SIZE_TEST, "longest_edge": cfg.INPUT.MAX_SIZE_TEST}
    processor = processor_cls(image_mean=mean, image_std=std, rescale_factor=1 / 255.0,
                                             size=size, size_divisor=cfg.MODEL.MASK_FORMER.SIZE_DIVISIBILITY,
                                             ignore_index=cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE)
    processor.save_pretrained(folder)


def _d2_to_hf(args) -> dict:
    from transformers import Mask2FormerForUniversalSegmentation

    from segcore.checkpoint import Checkpointer

    cfg, model = _build_our_model(args.config_file, args.opts)
    hf_config = hf_config_from_cfg(cfg)
    if cfg.MODEL.MASK_FORMER.DROPOUT:
        print(f"Note: MODEL.MASK_FORMER.DROPOUT={cfg.MODEL.MASK_FORMER.DROPOUT}: HF applies it in the masked-attention "
              "decoder too (training only; inference is unaffected)")
    Checkpointer(model).load(args.input, checkpointables=[], strict=True)
    ours = model.state_dict()
    backbone = _BACKBONES_BY_OUR_NAME[cfg.MODEL.BACKBONE.NAME]
    if cfg.INPUT.FORMAT == "BGR":
        ours = _flip_input_channels(ours, backbone)
    # built without memory or initialization (the meta device): its state dict gives the names,
    # shapes and dtypes to fill, and the filled tensors are then assigned to it
    with torch.device("meta"):
        hf_model = Mask2FormerForUniversalSegmentation(hf_config).eval()
    converted = convert_d2_to_hf(ours, hf_model.state_dict(), backbone.hf_model_type)
    hf_model.load_state_dict(converted, strict=True, assign=True)
    hf_model.save_pretrained(args.output)
    _write_preprocessor(cfg, args.output)
    print(f"Wrote a Hugging Face Mask2Former ({backbone.hf_model_type} backbone, {len(converted)} entries) to "
          f"{args.output}{' (first convolution flipped to read RGB)' if cfg.INPUT.FORMAT == 'BGR' else ''}.")
    return {"state_dict": converted, "config": hf_config}


# --------------------------------------------------------------------------- command line
def main(argv: Optional[List[str]] = None) -> dict:
    """Command line (see the module docstring). Returns what was written (for tests).

    Raises:
        FileNotFoundError, ValueError, UnsupportedModelError: see :func:`load_hf_checkpoint`,
            :func:`convert_hf_to_d2`, :func:`check_against_model`, :func:`hf_config_from_cfg`,
            :func:`convert_d2_to_hf`.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="direction", required=True)
    h = sub.add_parser("hf-to-d2", help="Hugging Face folder -> Detectron2 .pkl/.pth + our YAML config")
    h.add_argument("input", help="HF folder (config.json + weights) or weight file")
    h.add_argument("output", help="our weights to write: .pkl (Detectron2) or .pth")
    h.add_argument("--hf-config", help="HF config.json (default: next to the weights)")
    h.add_argument("--base-config", help="our config to inherit (_BASE_); default by backbone: "
                   + ", ".join(f"{k}: {v}" for k, v in DEFAULT_BASE_CONFIGS.items()))
    h.add_argument("--config-out", help="YAML to write (default: the output with .yaml)")
    h.add_argument("--no-check", action="store_true",
                   help="do not build our model from the written config to check every name and shape")
    d = sub.add_parser("d2-to-hf", help="our checkpoint + config -> Hugging Face folder")
    d.add_argument("input", help="our checkpoint (.pth / .pkl, as Checkpointer loads)")
    d.add_argument("output", help="folder to write (config.json, model.safetensors, preprocessor_config.json)")
    d.add_argument("--config-file", required=True, help="our config of the checkpoint")
    d.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                   help="config overrides KEY VALUE ... (last on the command line)")
    args = parser.parse_args(argv)
    if args.direction == "hf-to-d2":
        return _hf_to_d2(args)
    return _d2_to_hf(args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # RuntimeError: a checkpoint that does not fit
        sys.exit(f"error: {e}")
