"""Every shipped YAML config merges through ``setup_cfg`` and builds its model on CPU.

Weights are neither loaded (``MODEL.WEIGHTS ""``) nor initialized, and no forward is run: the checks read the config
and the built model's structure (meta-architecture, backbone depth / type, number of classes,
the ImageNet weights the original config starts from). For the configs of the original MaskFormer
and Mask2Former releases, the built model is also checked against the released values
(``tests/fixtures/maskformer_original_configs.json``, ``mask2former_original_configs.json``, see
``tests/configs/released.py``): backbone, norm, stem and dilations, pixel decoder, transformer
sizes, queries and inference settings.
"""
import contextlib
import glob
import os
import re
from collections import defaultdict
from unittest import mock

import pytest
import torch

from segcore.config import ConfigError, get_cfg
from segcore.engine import setup_cfg
from segcore.layers import FrozenBatchNorm2d
from segcore.modeling import build_model
from tests.configs.released import fixture_of, released_values
from tests.paths import CONFIGS, REPO_ROOT

CONFIG_DIR = CONFIGS
ALL_CONFIGS = sorted(os.path.relpath(p, CONFIG_DIR)
                     for p in glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True))
# "_BASE_" files (Base-*.yaml) hold shared settings and pick no model: they are only merged.
BASE_CONFIGS = [c for c in ALL_CONFIGS if os.path.basename(c).startswith("Base-")]
MODEL_CONFIGS = [c for c in ALL_CONFIGS if c not in BASE_CONFIGS]

# Classes of datasets whose folder name carries no count (folders like "ade20k-150" do): by
# top-level folder (MaskFormer's layout) or by "<dataset>/<task>-segmentation" (Mask2Former's).
NUM_CLASSES_BY_FOLDER = {
    "coco-panoptic": 133, "coco-instance": 80,
    "ade20k/semantic-segmentation": 150, "ade20k/panoptic-segmentation": 150, "ade20k/instance-segmentation": 100,
    "coco/panoptic-segmentation": 133, "coco/instance-segmentation": 80,
    "cityscapes/semantic-segmentation": 19, "cityscapes/panoptic-segmentation": 19,
    "cityscapes/instance-segmentation": 8,
    "mapillary-vistas/semantic-segmentation": 65, "mapillary-vistas/panoptic-segmentation": 65,
}
# Meta-architecture by file-name prefix (the first that matches): Mask2Former's "maskformer2_*" is
# a MaskFormer too (its decoders are chosen by name inside the MaskFormer meta-architecture).
META_ARCH_BY_PREFIX = {"per_pixel_baseline": "SemanticSegmentor", "maskformer2": "MaskFormer",
                       "maskformer": "MaskFormer"}
# SeMask's files (semask_maskformer*_R50_*, maskformer*_semask_swin_*) name "semask" anywhere: the
# SeMask meta-architecture, and for the Swin ones its backbone with the Semantic Layers.
SEMASK_META_ARCH, SEMASK_SWIN = "SeMaskMaskFormer", "D2SeMaskSwinTransformer"
# SeMask-FPN's files (semfpn_semask_swin_*, the quickstart's semask_fpn_*) are per-pixel models: the
# SemanticSegmentor with the SeMask-FPN backbone (the release's "SeMaskSwinTransformer") and BranchFPNHead.
SEMASK_FPN_META_ARCH, SEMASK_FPN_SWIN, SEMASK_FPN_HEAD = "SemanticSegmentor", "SeMaskSwinTransformer", "BranchFPNHead"


def is_semask_fpn(name: str) -> bool:
    return name.startswith("semfpn_") or name.startswith("semask_fpn_")


# (depth, stem type, stem width, res5 multi-grid, ImageNet weights) of the original ResNet configs.
RESNETS = {
    "R50": (50, "basic", 64, None, "detectron2://ImageNetPretrained/torchvision/R-50.pkl"),
    "R101": (101, "basic", 64, None, "R-101.pkl"),
    "R101c": (101, "deeplab", 128, [1, 2, 4], "detectron2://DeepLab/R-103.pkl"),
}
BLOCKS_PER_STAGE = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
# The video configs (youtubevis_*) start from the COCO instance segmentation checkpoint of their
# backbone (the release's MODEL.WEIGHTS), not from ImageNet weights.
VIDEO_CONFIG_WEIGHTS = {"R50": "model_final_3c8ec9.pkl", "R101": "model_final_eba159.pkl",
                        "swin_tiny": "model_final_86143f.pkl", "swin_small": "model_final_1e7f22.pkl",
                        "swin_base_IN21k_384": "model_final_83d103.pkl", "swin_large_IN21k_384": "model_final_e5f453.pkl"}
# (embed dim, depths, window size, converted ImageNet weights) of the Swin variants.
SWINS = {
    "swin_tiny": (96, [2, 2, 6, 2], 7, "swin_tiny_patch4_window7_224.pkl"),
    "swin_small": (96, [2, 2, 18, 2], 7, "swin_small_patch4_window7_224.pkl"),
    "swin_base_384": (128, [2, 2, 18, 2], 12, "swin_base_patch4_window12_384.pkl"),  # Mask2Former's IN-1k Swin-B
    "swin_base_IN21k_384": (128, [2, 2, 18, 2], 12, "swin_base_patch4_window12_384_22k.pkl"),
    "swin_large_IN21k_384": (192, [2, 2, 18, 2], 12, "swin_large_patch4_window12_384_22k.pkl"),
}


# Weight initialization dominates the build time of the large models (Swin-L: ~7 s of ~8 s) and
# these tests only check structure: the torch.nn.init functions become no-ops while building.
_INIT_FUNCTIONS = ["trunc_normal_", "normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                   "xavier_normal_", "constant_", "zeros_", "ones_", "orthogonal_"]


def build_uninitialized(cfg):
    with contextlib.ExitStack() as stack:
        for name in _INIT_FUNCTIONS:
            stack.enter_context(mock.patch.object(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor))
        return build_model(cfg)


def expected_num_classes(rel_path: str, cfg):
    parts = rel_path.split(os.sep)
    folder = parts[0]
    m = re.search(r"-(\d+)$", folder.replace("-panoptic", ""))
    if m:
        return int(m.group(1))
    for key in ["/".join(parts[:2]), folder]:
        if key in NUM_CLASSES_BY_FOLDER:
            return NUM_CLASSES_BY_FOLDER[key]
    from segcore.data import MetadataCatalog

    meta = MetadataCatalog.get((list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN))[0])
    # an instance dataset has thing classes only; semantic and panoptic ones list every class as stuff
    return len(meta.stuff_classes) if meta.get("stuff_classes") is not None else len(meta.thing_classes)


def backbone_token(name: str):
    """The backbone named in a config's file name (R50, R101, R101c, swin_*), or None."""
    m = re.search(r"_(R50|R101c|R101)_", name)
    if m:
        return m.group(1)
    for token in sorted(SWINS, key=len, reverse=True):
        if f"_{token}_" in name:
            return token
    return None


def count_blocks(keys, pattern: str):
    found = defaultdict(set)
    for k in keys:
        m = re.match(pattern, k)
        if m:
            found[int(m.group(1))].add(int(m.group(2)))
    return [len(found[i]) for i in sorted(found)]


def count_layers(keys, prefix: str) -> int:
    """The number of distinct ``<prefix><index>.`` entries among the state-dict names."""
    return len({k[len(prefix):].split(".")[0] for k in keys if k.startswith(prefix)})


# Pixel decoders with a transformer encoder of TRANSFORMER_ENC_LAYERS layers, named
# "sem_seg_head.pixel_decoder.transformer.encoder.layers.<i>." in the originals' state dicts.
ENCODER_PIXEL_DECODERS = {"TransformerEncoderPixelDecoder", "MSDeformAttnPixelDecoder"}


def check_model_against_release(model, keys, v):
    """The built ``model`` (state-dict names ``keys``) has the structure and the inference settings
    that the released values ``v`` ({dotted key: value}) ask for."""
    assert type(model).__name__ == v["MODEL.META_ARCHITECTURE"]
    assert type(model.sem_seg_head).__name__ == v["MODEL.SEM_SEG_HEAD.NAME"]
    backbone = v["MODEL.BACKBONE.NAME"]
    if backbone in ("build_resnet_backbone", "build_resnet_deeplab_backbone"):
        deeplab = backbone == "build_resnet_deeplab_backbone"
        # Detectron2's build_resnet_backbone always builds the 7x7 stem; only the DeepLab builder reads STEM_TYPE.
        deeplab_stem = deeplab and v["MODEL.RESNETS.STEM_TYPE"] == "deeplab"
        assert ("backbone.stem.conv3.weight" in keys) == deeplab_stem
        assert model.backbone.stem.out_channels == v["MODEL.RESNETS.STEM_OUT_CHANNELS"]
        assert count_blocks(keys, r"backbone\.res(\d)\.(\d+)\.") == BLOCKS_PER_STAGE[v["MODEL.RESNETS.DEPTH"]]
        assert list(model.backbone.output_shape()) == v["MODEL.RESNETS.OUT_FEATURES"]
        assert model.backbone.res3[0].conv1.stride == ((2, 2) if v["MODEL.RESNETS.STRIDE_IN_1X1"] else (1, 1))
        assert (isinstance(model.backbone.stem.conv1.norm, FrozenBatchNorm2d)
                == (v["MODEL.RESNETS.NORM"] == "FrozenBN")), v["MODEL.RESNETS.NORM"]
        res5 = v["MODEL.RESNETS.RES5_DILATION"]
        grid = v["MODEL.RESNETS.RES5_MULTI_GRID"] if deeplab else [1, 1, 1]
        assert [b.conv2.dilation[0] for b in model.backbone.res5] == [res5 * g for g in grid]
        assert {b.conv2.dilation[0] for b in model.backbone.res4} == {v["MODEL.RESNETS.RES4_DILATION"]}
    elif backbone in ("D2SwinTransformer", SEMASK_SWIN):
        embed_dim, depths, heads, window = (v[f"MODEL.SWIN.{k}"] for k in ["EMBED_DIM", "DEPTHS", "NUM_HEADS",
                                                                             "WINDOW_SIZE"])
        assert count_blocks(keys, r"backbone\.layers\.(\d)\.blocks\.(\d+)\.") == depths
        sd = model.state_dict()
        assert sd["backbone.patch_embed.proj.weight"].shape[0] == embed_dim
        for i in range(len(depths)):
            table = sd[f"backbone.layers.{i}.blocks.0.attn.relative_position_bias_table"]
            assert tuple(table.shape) == ((2 * window - 1) ** 2, heads[i])
        assert ("backbone.absolute_pos_embed" in keys) == v["MODEL.SWIN.APE"]
        if backbone == SEMASK_SWIN:  # one Semantic Layer per stage: N_S blocks scoring the K classes
            assert count_blocks(keys, r"backbone\.layers\.(\d)\.semantic_layer\.class_injection\.(\d+)\.") == \
                [v["MODEL.SWIN.NUM_SEM_BLOCKS"]] * len(depths)
            for i in range(len(depths)):
                q = sd[f"backbone.layers.{i}.semantic_layer.class_injection.0.mlp_cls_q.weight"]
                assert tuple(q.shape) == (v["MODEL.SEM_SEG_HEAD.NUM_CLASSES"], embed_dim * 2 ** i)
            windows = [layer.semantic_layer.window_size for layer in model.backbone.layers]
            assert set(windows) - {None} == {v["MODEL.SWIN.SEM_WINDOW_SIZE"]}
    else:
        raise AssertionError(f"no structural check for backbone {backbone}")

    mf = {k[len("MODEL.MASK_FORMER."):]: val for k, val in v.items() if k.startswith("MODEL.MASK_FORMER.")}
    head = model.sem_seg_head
    if hasattr(head, "pixel_decoder"):
        decoder_name = v["MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME"]
        if v["MODEL.SEM_SEG_HEAD.NAME"] in ("MaskFormerHead", "BranchMaskFormerHead"):
            assert type(head.pixel_decoder).__name__ == decoder_name
        encoder_layers = count_layers(keys, "sem_seg_head.pixel_decoder.transformer.encoder.layers.")
        assert encoder_layers == (v["MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS"]
                                  if decoder_name in ENCODER_PIXEL_DECODERS else 0)
        if decoder_name == "MSDeformAttnPixelDecoder":
            # one level embedding per encoder input; per layer, heads x levels x points sampling offsets (x, y)
            levels = len(v["MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES"])
            heads = v["MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS"]
            points = v["MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS"]
            sd = model.state_dict()
            assert tuple(sd["sem_seg_head.pixel_decoder.transformer.level_embed"].shape) == \
                (levels, v["MODEL.SEM_SEG_HEAD.CONVS_DIM"])
            layer0 = "sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn."
            assert sd[layer0 + "sampling_offsets.weight"].shape[0] == heads * levels * points * 2
            assert sd[layer0 + "attention_weights.weight"].shape[0] == heads * levels * points
    if hasattr(getattr(head, "predictor", None), "query_embed"):  # MaskFormerHead, PerPixelBaselinePlusHead
        assert head.transformer_in_feature == mf["TRANSFORMER_IN_FEATURE"]
        assert tuple(head.predictor.query_embed.weight.shape) == (mf["NUM_OBJECT_QUERIES"], mf["HIDDEN_DIM"])
        if mf.get("TRANSFORMER_DECODER_NAME") in ("MultiScaleMaskedTransformerDecoder",  # Mask2Former's
                                                  "VideoMultiScaleMaskedTransformerDecoder"):
            # DEC_LAYERS counts the prediction from the queries before the first layer too
            for kind in ["self_attention", "cross_attention", "ffn"]:
                assert count_layers(keys, f"sem_seg_head.predictor.transformer_{kind}_layers.") == \
                    mf["DEC_LAYERS"] - 1, kind
        else:
            assert count_layers(keys, "sem_seg_head.predictor.transformer.decoder.layers.") == mf["DEC_LAYERS"]
        if mf["ENFORCE_INPUT_PROJ"]:
            assert "sem_seg_head.predictor.input_proj.weight" in keys
    if v["MODEL.META_ARCHITECTURE"] in ("MaskFormer", SEMASK_META_ARCH):
        if v["MODEL.META_ARCHITECTURE"] == SEMASK_META_ARCH:
            assert model.cate_weight == v["MODEL.MASK_FORMER.CATE_WEIGHT"]
            assert model.semantic_ignore_value == v["MODEL.SEM_SEG_HEAD.IGNORE_VALUE"]
        assert model.num_queries == mf["NUM_OBJECT_QUERIES"]
        for task in ["SEMANTIC", "INSTANCE", "PANOPTIC"]:  # MaskFormer's release has PANOPTIC_ON only
            if f"TEST.{task}_ON" in mf:
                assert getattr(model, f"{task.lower()}_on") == mf[f"TEST.{task}_ON"], task
        assert model.object_mask_threshold == mf["TEST.OBJECT_MASK_THRESHOLD"]
        assert model.overlap_threshold == mf["TEST.OVERLAP_THRESHOLD"]
        if mf["SIZE_DIVISIBILITY"] >= 0:
            assert model.size_divisibility == mf["SIZE_DIVISIBILITY"]
    assert model.pixel_mean.flatten().tolist() == pytest.approx(v["MODEL.PIXEL_MEAN"])
    assert model.pixel_std.flatten().tolist() == pytest.approx(v["MODEL.PIXEL_STD"])


def test_the_config_folder_has_the_known_configs():
    for name in ["ade20k-150/maskformer_R50_bs16_160k.yaml", "ade20k-150/maskformer_R101_bs16_160k.yaml",
                 "ade20k-150/maskformer_R101c_bs16_160k.yaml", "ade20k-150/per_pixel_baseline_R50_bs16_160k.yaml",
                 "ade20k-150/per_pixel_baseline_plus_R50_bs16_160k.yaml"]:
        assert name.replace("/", os.sep) in MODEL_CONFIGS


@pytest.mark.parametrize("rel_path", BASE_CONFIGS)
def test_base_config_merges(rel_path):
    cfg = setup_cfg(os.path.join(CONFIG_DIR, rel_path), ["MODEL.DEVICE", "cpu"])
    assert cfg.DATASETS.TRAIN or cfg.DATASETS.TEST, f"{rel_path} names no dataset"


@pytest.mark.parametrize("rel_path", MODEL_CONFIGS)
def test_config_builds_its_model(rel_path):
    path = os.path.join(CONFIG_DIR, rel_path)
    cfg = setup_cfg(path, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    original_weights = setup_cfg(path, ["MODEL.DEVICE", "cpu"]).MODEL.WEIGHTS
    name = os.path.basename(rel_path)

    model = build_uninitialized(cfg)
    keys = list(model.state_dict().keys())

    # meta-architecture
    assert type(model).__name__ == cfg.MODEL.META_ARCHITECTURE
    if is_semask_fpn(name):
        assert (cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME, cfg.MODEL.SEM_SEG_HEAD.NAME) == \
            (SEMASK_FPN_META_ARCH, SEMASK_FPN_SWIN, SEMASK_FPN_HEAD), rel_path
        assert model.sem_seg_head.predictor.weight.shape[0] == cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    elif "semask" in name:
        assert cfg.MODEL.META_ARCHITECTURE == SEMASK_META_ARCH, rel_path
    for prefix, arch in ({} if "semask" in name else META_ARCH_BY_PREFIX).items():
        if name.startswith(prefix):
            assert cfg.MODEL.META_ARCHITECTURE == arch, rel_path
            break

    # number of classes, in the config and in the built head
    k = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    assert k == expected_num_classes(rel_path, cfg), rel_path
    assert getattr(model.sem_seg_head, "num_classes", k) == k
    class_embed = [v for n, v in model.state_dict().items() if n.endswith("predictor.class_embed.weight")]
    if class_embed:  # mask classification: K classes + "no object"
        assert class_embed[0].shape[0] == k + 1
    if cfg.MODEL.SEM_SEG_HEAD.NAME == "PerPixelBaselinePlusHead":
        assert cfg.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES == k
    if cfg.MODEL.SEM_SEG_HEAD.NAME == "PerPixelBaselineHead":
        assert model.state_dict()["sem_seg_head.predictor.weight"].shape[0] == k

    # backbone: type, depth and the ImageNet weights the original starts from
    token = backbone_token(name)
    if name.startswith("video_") and not rel_path.startswith("quickstart"):  # the released video configs
        assert original_weights == VIDEO_CONFIG_WEIGHTS[token], rel_path
    if token in RESNETS:
        depth, stem, stem_width, multi_grid, weights = RESNETS[token]
        assert cfg.MODEL.RESNETS.DEPTH == depth and cfg.MODEL.RESNETS.STEM_TYPE == stem
        assert count_blocks(keys, r"backbone\.res(\d)\.(\d+)\.") == BLOCKS_PER_STAGE[depth]
        assert model.backbone.output_shape()["res5"].channels == 2048
        assert ("backbone.stem.conv3.weight" in keys) == (stem == "deeplab")
        assert model.backbone.stem.out_channels == stem_width
        if multi_grid is not None:
            assert list(cfg.MODEL.RESNETS.RES5_MULTI_GRID) == multi_grid
            assert [b.conv2.dilation[0] for b in model.backbone.res5] == multi_grid
        assert name.startswith("video_") or original_weights == weights, rel_path
    elif token in SWINS:
        embed_dim, depths, window, weights = SWINS[token]
        semask_swin = SEMASK_FPN_SWIN if is_semask_fpn(name) else SEMASK_SWIN
        assert cfg.MODEL.BACKBONE.NAME == (semask_swin if "semask" in name else "D2SwinTransformer")
        assert (cfg.MODEL.SWIN.EMBED_DIM, list(cfg.MODEL.SWIN.DEPTHS), cfg.MODEL.SWIN.WINDOW_SIZE) == \
            (embed_dim, depths, window)
        assert count_blocks(keys, r"backbone\.layers\.(\d)\.blocks\.(\d+)\.") == depths
        assert model.backbone.output_shape()["res2"].channels == embed_dim
        assert name.startswith("video_") or original_weights == weights, rel_path

    # the original release's architecture and inference settings
    released_path = rel_path.replace(os.sep, "/")
    fixture = fixture_of(released_path)
    if fixture is not None:
        check_model_against_release(model, keys, released_values(released_path, fixture))


def test_unknown_key_in_a_config_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_BASE_: {os.path.join(CONFIG_DIR, 'ade20k-150', 'maskformer_R50_bs16_160k.yaml')}\n"
                   "MODEL:\n  SEM_SEG_HEAD:\n    NUM_CLASSSES: 150\n")
    with pytest.raises(ConfigError, match="NUM_CLASSSES"):
        setup_cfg(str(bad), [])
    assert "NUM_CLASSSES" not in get_cfg().MODEL.SEM_SEG_HEAD


def test_model_zoo_commands_name_configs_that_the_zoo_marks_correctly():
    """MODEL_ZOO.md: a row marked as having its config here names an existing file, and every
    evaluation command is one of the table rows (same config, same checkpoint)."""
    text = open(os.path.join(REPO_ROOT, "MODEL_ZOO.md"), encoding="utf-8").read()
    rows = re.findall(r"^\| \[[^\]]+\]\((configs/\S+\.yaml)\).*\[model\]\((https://\S+\.pkl)\) \| ([^|]+) \|$",
                      text, flags=re.M)
    assert len(rows) > 50
    for cfg, _url, here in rows:
        if here.strip() == "yes":
            assert os.path.isfile(os.path.join(REPO_ROOT, cfg)), f"MODEL_ZOO.md says {cfg} is here"
    commands = re.findall(r"^python train_net\.py --config-file (\S+) --eval-only MODEL\.WEIGHTS (\S+)$", text, re.M)
    assert sorted(c for c in commands if "://" in c[1]) == sorted((cfg, url) for cfg, url, _ in rows)
    # SeMask's checkpoints are Google Drive files, downloaded first: one command per row, on a local file
    drive_rows = re.findall(r"^\| \[[^\]]+\]\((configs/\S+\.yaml)\).*\[checkpoint\]\((https://drive\.google\.com/file/d/"
                            r"\S+)\) \| ([^|]+) \|$", text, flags=re.M)
    # 3 SeMask-MaskFormer / SeMask-Mask2Former rows, 8 SeMask-FPN rows (T, S, B, L on ADE20K and Cityscapes)
    assert len(drive_rows) == 3 + 8
    for cfg, _url, here in drive_rows:
        assert here.strip() == "yes" and os.path.isfile(os.path.join(REPO_ROOT, cfg)), cfg
    local = [(cfg, weights) for cfg, weights in commands if "://" not in weights]
    assert sorted(cfg for cfg, _ in local) == sorted(cfg for cfg, _, _ in drive_rows)
    # SeMask-FPN's mmsegmentation checkpoints are converted first (tools/convert-semask-fpn-to-d2.py, a .pkl)
    assert all(weights.endswith(".pkl" if "/semask_fpn/" in cfg else ".pth") for cfg, weights in local)
    assert len({w for _, w in local}) == len(local)
