"""tools/convert-*-to-d2.py: round trips from the original naming into segcore models."""
import importlib.util
import os
import re

import numpy as np
import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer
from segcore.checkpoint.safe_pickle import safe_load
from segcore.config import get_cfg
from segcore.layers import ShapeSpec
from segcore.modeling.backbone.resnet import build_resnet_backbone
from tests.paths import CONFIGS, TOOLS



def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(TOOLS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _to_torchvision(d2_name: str) -> str:
    """Detectron2 ResNet name -> torchvision name (the inverse of the converter, written apart)."""
    m = re.match(r"^stem\.conv1\.(weight|norm\.(\w+))$", d2_name)
    if m:
        return "conv1.weight" if m.group(1) == "weight" else f"bn1.{m.group(2)}"
    m = re.match(r"^res(\d)\.(\d+)\.(conv\d|shortcut)\.(weight|norm\.(\w+))$", d2_name)
    assert m, d2_name
    stage, block, layer, _, norm_attr = m.groups()
    prefix = f"layer{int(stage) - 1}.{block}."
    if layer == "shortcut":
        return prefix + ("downsample.0.weight" if norm_attr is None else f"downsample.1.{norm_attr}")
    return prefix + (f"{layer}.weight" if norm_attr is None else f"bn{layer[-1]}.{norm_attr}")


def _tiny_r50():
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False  # torchvision puts the stride in the 3x3 conv
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 8
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    return build_resnet_backbone(cfg, ShapeSpec(channels=3))


def test_torchvision_resnet50_round_trip(tmp_path):
    backbone = _tiny_r50()
    g = torch.Generator().manual_seed(0)
    tv = {_to_torchvision(k): torch.randn(v.shape, generator=g) for k, v in backbone.state_dict().items()}
    # a few names of torchvision's resnet50 state dict, as published
    for name in ["conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                 "layer4.2.bn3.weight", "layer3.5.conv2.weight"]:
        assert name in tv, name
    assert tv["conv1.weight"].shape[-2:] == (7, 7)
    tv["fc.weight"], tv["fc.bias"] = torch.randn(10, 128), torch.randn(10)
    tv["bn1.num_batches_tracked"] = torch.tensor(5)
    src = tmp_path / "resnet50.pth"
    torch.save(tv, src)

    out = tmp_path / "R-50.pkl"
    _tool("convert-torchvision-to-d2").main([str(src), str(out)])
    with open(out, "rb") as f:
        data = safe_load(f)
    assert data["__author__"] == "torchvision" and data["matching_heuristics"] is True
    names = set(data["model"])
    assert {"stem.conv1.weight", "stem.conv1.norm.running_mean", "res2.0.conv1.weight", "res2.0.conv1.norm.bias",
            "res2.0.shortcut.weight", "res2.0.shortcut.norm.weight", "res5.2.conv3.norm.running_var"} <= names
    assert names == set(backbone.state_dict())  # fc and the counter dropped
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())

    model = nn.Module()
    model.backbone = _tiny_r50()
    model.head = nn.Conv2d(128, 3, 1)
    ck = Checkpointer(model)
    ck.load(str(out))
    sd = model.state_dict()
    for k in backbone.state_dict():
        assert torch.equal(sd["backbone." + k], tv[_to_torchvision(k)]), k
    assert ck.incompatible_keys.missing_keys == ["head.weight", "head.bias"]
    assert ck.incompatible_keys.unexpected_keys == [] and ck.incompatible_keys.incorrect_shapes == []


def test_torchvision_converter_rejects_non_resnet_names(tmp_path):
    src = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, src)
    with pytest.raises(ValueError, match="features.0.weight"):
        _tool("convert-torchvision-to-d2").main([str(src), str(tmp_path / "o.pkl")])


SWIN_TINY = [
    "MODEL.BACKBONE.NAME", "D2SwinTransformer", "MODEL.SWIN.EMBED_DIM", "8", "MODEL.SWIN.DEPTHS", "[2, 2, 2, 2]",
    "MODEL.SWIN.NUM_HEADS", "[1, 1, 2, 2]", "MODEL.SWIN.WINDOW_SIZE", "7", "MODEL.SWIN.DROP_PATH_RATE", "0.0",
    "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "16", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3",
    "MODEL.MASK_FORMER.HIDDEN_DIM", "16", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "4", "MODEL.MASK_FORMER.NHEADS", "2",
    "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "32", "MODEL.MASK_FORMER.DEC_LAYERS", "1", "MODEL.WEIGHTS", "",
]


def _swin_imagenet_keys(d2_swin_keys):
    """The names of an official Swin classifier: the backbone names, with a final ``norm`` and a
    ``head`` instead of Detectron2's per-stage output norms ``norm0..3``."""
    keys = [k for k in d2_swin_keys if not re.match(r"^norm\d\.", k)]
    return keys + ["layers.0.blocks.1.attn_mask", "norm.weight", "norm.bias", "head.weight", "head.bias"]


def test_swin_imagenet_checkpoint_round_trip(tmp_path, mf_cfg):
    pytest.importorskip("mask_former.modeling.backbone.swin")
    from segcore.modeling import build_model

    mf_cfg.merge_from_file(os.path.join(CONFIGS, "ade20k-150", "maskformer_R50_bs16_160k.yaml"))
    mf_cfg.merge_from_list(SWIN_TINY)
    model = build_model(mf_cfg)
    model_sd = model.state_dict()
    backbone_keys = [k[len("backbone."):] for k in model_sd if k.startswith("backbone.")]
    assert "patch_embed.proj.weight" in backbone_keys
    assert "layers.0.blocks.0.attn.qkv.weight" in backbone_keys
    assert "layers.0.downsample.reduction.weight" in backbone_keys
    final_dim = 8 * 8

    g = torch.Generator().manual_seed(0)
    src_sd = {}
    for k in _swin_imagenet_keys(backbone_keys):
        if k in ("norm.weight", "norm.bias", "head.bias"):
            shape = (final_dim,) if k.startswith("norm") else (11,)
        elif k == "head.weight":
            shape = (11, final_dim)
        elif k.endswith("attn_mask"):  # a buffer of the shifted blocks in the classification code
            shape = (64, 49, 49)
        else:
            shape = tuple(model_sd["backbone." + k].shape)
        ref = model_sd.get("backbone." + k)
        if ref is not None and not ref.is_floating_point():
            src_sd[k] = ref.clone()  # e.g. relative_position_index
        else:
            src_sd[k] = torch.randn(shape, generator=g)
    src = tmp_path / "swin_tiny_patch4_window7_224.pth"
    torch.save({"model": src_sd}, src)

    out = tmp_path / "swin_tiny_patch4_window7_224.pkl"
    _tool("convert-pretrained-swin-model-to-d2").main([str(src), str(out)])
    with open(out, "rb") as f:
        data = safe_load(f)
    assert data["__author__"] == "third_party" and data["matching_heuristics"] is True
    assert set(data["model"]) == set(src_sd)

    head_before = {k: v.clone() for k, v in model_sd.items() if not k.startswith("backbone.")}
    ck = Checkpointer(model)
    ck.load(str(out))
    new_sd = model.state_dict()
    for k, v in src_sd.items():
        if "backbone." + k in new_sd:
            assert torch.equal(new_sd["backbone." + k], v), k
    for k, v in head_before.items():
        assert torch.equal(new_sd[k], v), k  # nothing from the classifier went into the head
    inc = ck.incompatible_keys
    assert sorted(inc.unexpected_keys) == ["head.bias", "head.weight", "layers.0.blocks.1.attn_mask",
                                           "norm.bias", "norm.weight"]
    missing_backbone = sorted(k for k in inc.missing_keys if k.startswith("backbone."))
    assert missing_backbone == [f"backbone.norm{i}.{p}" for i in range(4) for p in ("bias", "weight")]
    assert all(k.split(".")[0] in ("backbone", "sem_seg_head", "criterion") for k in inc.missing_keys)
    assert all(c != m for m, c in ck.matched_keys.items())
    assert len(ck.matched_keys) == len(src_sd) - 5
    # the classifier norm is a dot-aligned suffix of the head's GroupNorms: other shapes, not loaded
    assert inc.incorrect_shapes and all(
        k.startswith("sem_seg_head.") and re.search(r"\.norm\.(weight|bias)$", k) and shape_ckpt == (final_dim,)
        for k, shape_ckpt, _ in inc.incorrect_shapes
    )


def test_swin_converter_requires_model_key(tmp_path):
    src = tmp_path / "bad.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, src)
    with pytest.raises(ValueError, match="bad.pth"):
        _tool("convert-pretrained-swin-model-to-d2").main([str(src), str(tmp_path / "o.pkl")])
