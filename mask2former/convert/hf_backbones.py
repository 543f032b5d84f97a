"""The backbones that convert between Hugging Face's Mask2Former and ours, one adapter each:
Swin (``SwinBackbone``) <-> :class:`~mask_former.modeling.backbone.swin.D2SwinTransformer`, and
ResNet (``ResNetConfig`` through ``AutoBackbone``; not timm) <-> ``build_resnet_backbone``
(ResNet-18/34 basic blocks, ResNet-50/101/152 bottlenecks, stride in the 1x1 or the 3x3 convolution).

An adapter holds what differs between backbones: the name rules (:mod:`.hf_names`), the config
keys both ways, the stage strides, and the entries of ours that Hugging Face does not store.
"""
from __future__ import annotations

import math
import re
from typing import Dict, List

import torch

from .errors import UnsupportedModelError
from .hf_names import (
    HF_BACKBONE_PREFIX,
    OUR_BACKBONE_PREFIX,
    RESNET_HF_ONLY,
    RESNET_RULES,
    SWIN_HF_ONLY,
    SWIN_RULES,
    HFOnly,
    Rule,
    prefixed_rules,
)

__all__ = ["BACKBONES", "BACKBONES_BY_OUR_NAME", "HF_STAGES", "OUR_STAGES", "HFBackbone", "ResNetHFBackbone",
           "SwinHFBackbone", "backbone_for_hf_config"]

#: the four stages Mask2Former reads, by HF's names and by ours
HF_STAGES = ["stage1", "stage2", "stage3", "stage4"]
OUR_STAGES = ["res2", "res3", "res4", "res5"]
#: the LayerNorm epsilon of our Swin (nn.LayerNorm's default)
OUR_LAYER_NORM_EPS = 1e-5


class HFBackbone:
    """What differs between the supported backbones: names, config keys, derived entries."""

    hf_model_type = ""  #: ``backbone_config.model_type`` of HF's config
    our_name = ""  #: MODEL.BACKBONE.NAME
    first_conv = ""  #: our name of the convolution that reads the image (inside the backbone)
    _rules: List[Rule] = []
    _hf_only: List[HFOnly] = []

    def rules(self) -> List[Rule]:
        """The backbone's rules with full names (HF's inside Mask2FormerForUniversalSegmentation, ours in the model)."""
        return prefixed_rules(HF_BACKBONE_PREFIX, OUR_BACKBONE_PREFIX, self._rules)

    def hf_only(self) -> List[HFOnly]:
        """(full-name pattern, fill) of the HF backbone entries without a counterpart in ours."""
        return [(re.escape(HF_BACKBONE_PREFIX) + p, f) for p, f in self._hf_only]

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
        """Our entries that HF does not store, computed from the others (full names).

        Raises:
            ValueError: an entry they are computed from has an impossible shape.
        """
        return {}


def _check_out_features(out_features, problems: List[str], model: str) -> None:
    if list(out_features or []) != HF_STAGES:
        problems.append(f"{model} backbone out_features={out_features}: Mask2Former reads all four stages {HF_STAGES}")


def _check_our_out_features(key: str, out_features, problems: List[str]) -> None:
    if list(out_features) != OUR_STAGES:
        problems.append(f"{key}={list(out_features)}: HF's Mask2Former reads {OUR_STAGES}")


class SwinHFBackbone(HFBackbone):
    """HF's ``SwinBackbone`` <-> our ``D2SwinTransformer``: ``attention.{q,k,v}_proj`` are the row
    blocks of our fused ``attn.qkv``, ``hidden_states_norms.stage{i}`` our ``norm{i-1}``; our
    ``relative_position_index`` buffers are computed from the table sizes."""

    hf_model_type = "swin"
    our_name = "D2SwinTransformer"
    first_conv = "patch_embed.proj.weight"
    _rules = SWIN_RULES
    _hf_only = SWIN_HF_ONLY

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
            "MODEL.SWIN.OUT_FEATURES": list(OUR_STAGES),
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
        _check_our_out_features("MODEL.SWIN.OUT_FEATURES", s.OUT_FEATURES, problems)
        return SwinConfig(
            image_size=s.PRETRAIN_IMG_SIZE, patch_size=s.PATCH_SIZE, num_channels=3, embed_dim=s.EMBED_DIM,
            depths=list(s.DEPTHS), num_heads=list(s.NUM_HEADS), window_size=s.WINDOW_SIZE, mlp_ratio=s.MLP_RATIO,
            qkv_bias=s.QKV_BIAS, hidden_dropout_prob=s.DROP_RATE, attention_probs_dropout_prob=s.ATTN_DROP_RATE,
            drop_path_rate=s.DROP_PATH_RATE, hidden_act="gelu", use_absolute_embeddings=False,
            layer_norm_eps=OUR_LAYER_NORM_EPS, out_features=list(HF_STAGES))

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


class ResNetHFBackbone(HFBackbone):
    """HF's ``ResNetBackbone`` <-> our ``build_resnet_backbone``: ``embedder.embedder`` is our
    ``stem.conv1``, ``stages.{s}.layers.{b}.layer.{l}`` our ``res{s+2}.{b}.conv{l+1}``; BatchNorm's
    ``num_batches_tracked`` has no counterpart in our FrozenBatchNorm2d."""

    hf_model_type = "resnet"
    our_name = "build_resnet_backbone"
    first_conv = "stem.conv1.weight"
    _rules = RESNET_RULES
    _hf_only = RESNET_HF_ONLY

    def strides(self, bcfg):
        first = 8 if bcfg.downsample_in_first_stage else 4
        return [first * 2 ** i for i in range(len(bcfg.depths))]

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
            "MODEL.RESNETS.OUT_FEATURES": list(OUR_STAGES),
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
        _check_our_out_features("MODEL.RESNETS.OUT_FEATURES", r.OUT_FEATURES, problems)
        return ResNetConfig(
            num_channels=3, embedding_size=r.STEM_OUT_CHANNELS,
            hidden_sizes=[r.RES2_OUT_CHANNELS * 2 ** i for i in range(4)], depths=list(blocks[0]),
            layer_type=layer_type, hidden_act="relu", downsample_in_first_stage=False,
            downsample_in_bottleneck=bool(r.STRIDE_IN_1X1), out_features=list(HF_STAGES))


#: the adapters by HF's ``backbone_config.model_type``, and by our MODEL.BACKBONE.NAME
BACKBONES: Dict[str, HFBackbone] = {b.hf_model_type: b for b in (SwinHFBackbone(), ResNetHFBackbone())}
BACKBONES_BY_OUR_NAME: Dict[str, HFBackbone] = {b.our_name: b for b in BACKBONES.values()}


def backbone_for_hf_config(config) -> HFBackbone:
    """The adapter of a ``transformers.Mask2FormerConfig``'s backbone.

    Raises:
        UnsupportedModelError: a timm backbone, or another model type than Swin and ResNet.
    """
    bcfg = getattr(config, "backbone_config", None)
    model_type = getattr(bcfg, "model_type", None)
    if getattr(config, "use_timm_backbone", False) or model_type not in BACKBONES:
        raise UnsupportedModelError(
            f"Hugging Face backbone '{model_type}'{' (timm)' if getattr(config, 'use_timm_backbone', False) else ''} "
            f"is not supported; supported: transformers {sorted(BACKBONES)} (backbone_config.model_type)")
    return BACKBONES[model_type]
