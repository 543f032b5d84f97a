"""tools/convert-hf-mask2former-to-d2.py against Hugging Face transformers' Mask2Former.

A tiny, randomly initialized ``Mask2FormerForUniversalSegmentation`` (every weight perturbed, so a
swapped or misplaced tensor shows) is written with ``save_pretrained``, converted to our names,
loaded strictly into our model built from the written config, and both models run on a real
photograph (skimage's astronaut, normalized by HF's image processor for HF and by our model for
ours): class and mask logits, final and auxiliary, agree within 1e-4. The converted weights then
go back to an HF folder, which ``from_pretrained`` loads into the original state dict exactly.
Both supported backbones (Swin, ResNet through ``ResNetConfig``) are covered.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from segcore.checkpoint import Checkpointer, safe_load
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.e2e_utils import MASKFORMER_QUICKSTART, load_script
from tests.paths import CONFIGS

transformers = pytest.importorskip("transformers")
skimage_data = pytest.importorskip("skimage.data")
safetensors_torch = pytest.importorskip("safetensors.torch")

TOOL = load_script("convert_hf_mask2former_to_d2", "tools/convert-hf-mask2former-to-d2.py")

#: the photograph's size: a multiple of 32, so neither model pads (HF's processor does not pad one
#: image; ours pads to 32). Swin's stages (48x64 ... 6x8) are padded to the window, the last one
#: is smaller than the window.
HEIGHT, WIDTH = 192, 256
ATOL = 1e-4
NUM_QUERIES, NUM_LABELS, DEC_LAYERS = 10, 5, 4
STAGES = ["stage1", "stage2", "stage3", "stage4"]


def _hf_config(backbone: str):
    if backbone == "swin":
        backbone_config = transformers.SwinConfig(embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8],
                                                  window_size=7, drop_path_rate=0.0, out_features=STAGES)
    else:  # a ResNet-50 layout (3, 4, 6, 3 bottlenecks) with tiny widths
        backbone_config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[32, 64, 128, 256],
                                                    depths=[3, 4, 6, 3], layer_type="bottleneck", out_features=STAGES)
    return transformers.Mask2FormerConfig(
        backbone_config=backbone_config, feature_size=64, mask_feature_size=64, hidden_dim=64, num_queries=NUM_QUERIES,
        num_labels=NUM_LABELS, decoder_layers=DEC_LAYERS, encoder_layers=2, dim_feedforward=128,
        encoder_feedforward_dim=96, num_attention_heads=4)


def _perturbed_hf_model(backbone: str):
    """HF's initialization leaves many tensors constant (zero sampling offsets and biases, unit
    norms, default BatchNorm statistics); every floating-point entry gets noise here, BatchNorm
    variances a random positive value. SwinModel's pooled-output LayerNorm, unused by Mask2Former,
    keeps its initial identity (the converter writes that back)."""
    torch.manual_seed(0)
    model = transformers.Mask2FormerForUniversalSegmentation(_hf_config(backbone)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or ".swin.layernorm." in name or name == "criterion.empty_weight":
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.add_(torch.randn(t.shape, generator=g) * 0.1)
    return model


def _photo() -> np.ndarray:
    return cv2.resize(skimage_data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)  # RGB uint8


@torch.no_grad()
def _run_hf(model, image: np.ndarray) -> list:
    """[(class logits, mask logits)] of the auxiliary predictions, then the final one."""
    # transformers 5 names the torchvision-free processor apart; 4.x has only this one
    processor_cls = getattr(transformers, "Mask2FormerImageProcessorPil", None) or transformers.Mask2FormerImageProcessor
    processor = processor_cls(do_resize=False)
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    out = model(pixel_values=pixel_values, output_auxiliary_logits=True)
    return [(a["class_queries_logits"], a["masks_queries_logits"]) for a in out.auxiliary_logits] + [
        (out.class_queries_logits, out.masks_queries_logits)]


@torch.no_grad()
def _run_ours(model, image: np.ndarray) -> list:
    """The same for our model, normalized and padded by the model itself."""
    images = model.preprocess_image([{"image": torch.from_numpy(image).permute(2, 0, 1).contiguous()}])
    out = model.sem_seg_head(model.backbone(images.tensor))
    return [(a["pred_logits"], a["pred_masks"]) for a in out["aux_outputs"]] + [(out["pred_logits"], out["pred_masks"])]


def _max_differences(ours: list, theirs: list) -> tuple:
    cls = max((a[0] - b[0]).abs().max().item() for a, b in zip(ours, theirs, strict=True))
    masks = max((a[1] - b[1]).abs().max().item() for a, b in zip(ours, theirs, strict=True))
    return cls, masks


@pytest.fixture(scope="module", params=["swin", "resnet"])
def converted(request, tmp_path_factory):
    """The HF model, its folder, the converted file and config, our model loaded from them, and
    both models' outputs on the photograph."""
    backbone = request.param
    root = tmp_path_factory.mktemp(f"hf_m2f_{backbone}")
    hf = _perturbed_hf_model(backbone)
    hf.save_pretrained(root / "hf")
    weights = root / "m2f.pkl"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        # the tool's own check (our model built from the written config) is what the strict load
        # below does; it is exercised by test_hf_shape_mismatch_is_refused_naming_both_keys
        result = TOOL.main(["hf-to-d2", str(root / "hf"), str(weights), "--no-check"])
    cfg = setup_cfg(result["config"], ["MODEL.DEVICE", "cpu"])
    ours = build_model(cfg).eval()
    checkpointer = Checkpointer(ours)
    checkpointer.load(str(weights), strict=True)
    image = _photo()
    return SimpleNamespace(backbone=backbone, root=root, hf=hf, weights=weights, result=result, cfg=cfg, ours=ours,
                           checkpointer=checkpointer, printed=printed.getvalue(), image=image,
                           hf_out=_run_hf(hf, image), our_out=_run_ours(ours, image))


def test_converted_file_loads_strictly(converted):
    incompatible = converted.checkpointer.incompatible_keys
    assert not incompatible.missing_keys and not incompatible.unexpected_keys and not incompatible.incorrect_shapes
    with open(converted.weights, "rb") as f:
        data = safe_load(f)
    assert data["matching_heuristics"] is False and "transformers" in data["__author__"]
    assert set(data["model"]) == set(converted.ours.state_dict())
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())
    if converted.backbone == "swin":  # SwinModel's pooled-output LayerNorm only
        assert set(converted.result["dropped"]) == {f"model.pixel_level_module.encoder.swin.layernorm.{p}"
                                                    for p in ("bias", "weight")}
    else:  # BatchNorm counters only
        assert converted.result["dropped"] and all(k.endswith("num_batches_tracked") for k in converted.result["dropped"])


def test_written_config_matches_the_hf_config(converted):
    cfg, text = converted.cfg, converted.printed
    with open(converted.result["config"]) as f:
        base = f.read().split("_BASE_:")[1].split("\n")[0].strip()
    assert os.path.isfile(os.path.join(os.path.dirname(converted.result["config"]), base))
    mf, head = cfg.MODEL.MASK_FORMER, cfg.MODEL.SEM_SEG_HEAD
    assert (mf.NUM_OBJECT_QUERIES, head.NUM_CLASSES, mf.HIDDEN_DIM, mf.DEC_LAYERS) == (NUM_QUERIES, NUM_LABELS, 64,
                                                                                      DEC_LAYERS)
    assert (head.CONVS_DIM, head.MASK_DIM, head.TRANSFORMER_ENC_LAYERS, mf.NHEADS, mf.DIM_FEEDFORWARD) == (64, 64, 2, 4,
                                                                                                        128)
    assert head.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD == 96 and head.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS == 4
    assert list(cfg.MODEL.PIXEL_MEAN) == [123.675, 116.28, 103.53] and cfg.INPUT.FORMAT == "RGB"
    if converted.backbone == "swin":
        assert (cfg.MODEL.SWIN.EMBED_DIM, list(cfg.MODEL.SWIN.DEPTHS), list(cfg.MODEL.SWIN.NUM_HEADS)) == (
            32, [1, 1, 2, 1], [1, 2, 4, 8])
    else:
        r = cfg.MODEL.RESNETS
        assert (r.DEPTH, r.STEM_OUT_CHANNELS, r.RES2_OUT_CHANNELS, r.WIDTH_PER_GROUP, r.STRIDE_IN_1X1) == (
            50, 16, 32, 8, False)
    assert f"MODEL.MASK_FORMER.NUM_OBJECT_QUERIES {NUM_QUERIES}" in text
    assert f"MODEL.SEM_SEG_HEAD.NUM_CLASSES {NUM_LABELS}" in text


def test_outputs_match_hf_on_a_photograph(converted):
    ours, theirs = converted.our_out, converted.hf_out
    assert len(ours) == len(theirs) == DEC_LAYERS  # the learnable-query prediction, 2 aux, the final one
    for (oc, om), (hc, hm) in zip(ours, theirs):
        assert oc.shape == hc.shape == (1, NUM_QUERIES, NUM_LABELS + 1)
        assert om.shape == hm.shape == (1, NUM_QUERIES, HEIGHT // 4, WIDTH // 4)
    # the comparison means something: logits of order 1, and masked attention that blocks part of
    # the image for most queries (a foreground fraction strictly between 0 and 1)
    final_cls, final_masks = theirs[-1]
    assert final_cls.std() > 0.1 and final_masks.std() > 0.1
    foreground = (theirs[-2][1].sigmoid() >= 0.5).float().mean(dim=(-2, -1))
    assert ((foreground > 0.02) & (foreground < 0.98)).float().mean() >= 0.5
    cls_diff, mask_diff = _max_differences(ours, theirs)
    print(f"{converted.backbone}: max |class logit diff| {cls_diff:.2e}, max |mask logit diff| {mask_diff:.2e}")
    for i, ((oc, om), (hc, hm)) in enumerate(zip(ours, theirs)):
        torch.testing.assert_close(oc, hc, atol=ATOL, rtol=0, msg=f"class logits, prediction {i}")
        torch.testing.assert_close(om, hm, atol=ATOL, rtol=0, msg=f"mask logits, prediction {i}")


@torch.no_grad()
def test_comparison_detects_swapped_query_and_key_projections(converted):
    """The check can fail: exchanging the q and k blocks of one of our self-attention layers
    (what a wrong part order in the conversion would do) moves the outputs far beyond 1e-4."""
    if converted.backbone != "swin":
        pytest.skip("the decoder does not depend on the backbone")
    attn = converted.ours.sem_seg_head.predictor.transformer_self_attention_layers[0].self_attn
    saved = attn.in_proj_weight.clone()
    q, k, v = saved.chunk(3)
    try:
        attn.in_proj_weight.copy_(torch.cat([k, q, v]))
        changed = _run_ours(converted.ours, converted.image)
    finally:
        attn.in_proj_weight.copy_(saved)
    assert max(_max_differences(changed, converted.hf_out)) > 1e-2


def test_live_and_saved_names_convert_alike(converted):
    """``save_pretrained`` writes older names than the live state dict (transformers 5 renames Swin's
    attention and nests it in ``swin.``); both convert to the same tensors."""
    live = TOOL.convert_hf_to_d2(converted.hf.state_dict(), converted.hf.config).state_dict
    from_file = converted.ours.state_dict()
    assert set(live) == set(from_file)
    assert all(torch.equal(live[k], from_file[k]) for k in live)


@torch.no_grad()
def test_round_trip_back_to_hf(converted, tmp_path):
    out = tmp_path / "back"
    TOOL.main(["d2-to-hf", str(converted.weights), str(out), "--config-file", converted.result["config"]])
    reloaded = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(str(out)).eval()
    original, back = converted.hf.state_dict(), reloaded.state_dict()
    assert set(original) == set(back)
    differ = [k for k in original if not torch.equal(original[k], back[k])]
    assert not differ, differ
    for (ac, am), (bc, bm) in zip(_run_hf(reloaded, converted.image), converted.hf_out):
        torch.testing.assert_close(ac, bc, atol=0, rtol=0)
        torch.testing.assert_close(am, bm, atol=0, rtol=0)
    with open(out / "preprocessor_config.json") as f:
        pre = json.load(f)
    np.testing.assert_allclose(pre["image_mean"], [0.485, 0.456, 0.406], atol=1e-6)
    np.testing.assert_allclose(pre["image_std"], [0.229, 0.224, 0.225], atol=1e-6)
    # and forward again, now with a preprocessor_config.json to read the normalization from (.pth this time)
    again = TOOL.main(["hf-to-d2", str(out), str(tmp_path / "again.pth"), "--no-check"])
    assert again["overrides"]["MODEL.PIXEL_MEAN"] == [123.675, 116.28, 103.53]
    assert again["overrides"]["MODEL.PIXEL_STD"] == [58.395, 57.12, 57.375]
    saved = torch.load(tmp_path / "again.pth", weights_only=True)
    assert saved["matching_heuristics"] is False
    ours = converted.ours.state_dict()
    assert set(saved["model"]) == set(ours) and all(torch.equal(saved["model"][k], ours[k]) for k in ours)


@torch.no_grad()
def test_bgr_model_is_written_to_read_rgb(converted, tmp_path):
    """Our BGR model (first convolution and normalization in BGR order) becomes the same HF model."""
    if converted.backbone != "swin":
        pytest.skip("one backbone suffices: the flip is the same code")
    state = {k: v.clone() for k, v in converted.ours.state_dict().items()}
    state["backbone.patch_embed.proj.weight"] = state["backbone.patch_embed.proj.weight"].flip(1)
    torch.save({"model": state}, tmp_path / "bgr.pth")
    mean, std = list(converted.cfg.MODEL.PIXEL_MEAN)[::-1], list(converted.cfg.MODEL.PIXEL_STD)[::-1]
    TOOL.main(["d2-to-hf", str(tmp_path / "bgr.pth"), str(tmp_path / "hf"), "--config-file",
               converted.result["config"], "--opts", "INPUT.FORMAT", "BGR", "MODEL.PIXEL_MEAN", str(mean),
               "MODEL.PIXEL_STD", str(std)])
    back = safetensors_torch.load_file(str(tmp_path / "hf" / "model.safetensors"))
    original = safetensors_torch.load_file(str(converted.root / "hf" / "model.safetensors"))
    assert set(back) == set(original) and all(torch.equal(back[k], original[k]) for k in back)
    with open(tmp_path / "hf" / "preprocessor_config.json") as f:
        np.testing.assert_allclose(json.load(f)["image_mean"], [0.485, 0.456, 0.406], atol=1e-6)


# ------------------------------------------------------------------ errors
def _copy_hf_folder(converted, dst):
    shutil.copytree(converted.root / "hf", dst)
    return safetensors_torch.load_file(str(dst / "model.safetensors"))


def test_unknown_hf_parameter_is_refused(converted, tmp_path):
    if converted.backbone != "swin":
        pytest.skip("the error path does not depend on the backbone")
    state = _copy_hf_folder(converted, tmp_path / "hf")
    state["model.transformer_module.decoder.layers.0.gate.weight"] = torch.zeros(4, 4)
    safetensors_torch.save_file(state, str(tmp_path / "hf" / "model.safetensors"))
    with pytest.raises(ValueError, match=r"'model\.transformer_module\.decoder\.layers\.0\.gate\.weight'"):
        TOOL.main(["hf-to-d2", str(tmp_path / "hf"), str(tmp_path / "out.pkl")])
    assert not (tmp_path / "out.pkl").exists() and not (tmp_path / "out.yaml").exists()


def test_hf_shape_mismatch_is_refused_naming_both_keys(converted, tmp_path):
    if converted.backbone != "swin":
        pytest.skip("the error path does not depend on the backbone")
    state = _copy_hf_folder(converted, tmp_path / "hf")  # config.json still says 5 labels (6 rows)
    state["class_predictor.weight"] = torch.zeros(NUM_LABELS + 2, 64)
    safetensors_torch.save_file(state, str(tmp_path / "hf" / "model.safetensors"))
    with pytest.raises(ValueError, match=r"(?s)sem_seg_head\.predictor\.class_embed\.weight' \(7, 64\).*"
                                         r"class_predictor\.weight.*\(6, 64\)"):
        TOOL.main(["hf-to-d2", str(tmp_path / "hf"), str(tmp_path / "out.pth")])
    assert not (tmp_path / "out.pth").exists() and not (tmp_path / "out.yaml").exists()


def test_d2_shape_mismatch_is_refused_naming_both_keys(converted):
    ours = dict(converted.ours.state_dict())
    ours["sem_seg_head.predictor.query_feat.weight"] = torch.zeros(NUM_QUERIES + 1, 64)
    with pytest.raises(ValueError, match=r"query_feat\.weight' \(11, 64\).*queries_features\.weight' \(10, 64\)"):
        TOOL.convert_d2_to_hf(ours, converted.hf.state_dict(), converted.backbone)
    ours = dict(converted.ours.state_dict(), **{"sem_seg_head.predictor.extra.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"predictor\.extra\.weight"):
        TOOL.convert_d2_to_hf(ours, converted.hf.state_dict(), converted.backbone)


def test_unsupported_hf_features_are_reported():
    config = _hf_config("swin")
    config.backbone_config.use_absolute_embeddings = True
    config.activation_function = "gelu"
    with pytest.raises(TOOL.UnsupportedModelError, match=r"(?s)use_absolute_embeddings.*activation_function='gelu'"):
        TOOL.hf_config_to_overrides(config)
    config = transformers.Mask2FormerConfig(backbone_config=transformers.ConvNextConfig(out_features=STAGES))
    with pytest.raises(TOOL.UnsupportedModelError, match="'convnext' is not supported"):
        TOOL.hf_config_to_overrides(config)


def test_unsupported_our_model_is_reported():
    cfg = setup_cfg(MASKFORMER_QUICKSTART, ["MODEL.DEVICE", "cpu"])  # MaskFormer, not Mask2Former
    with pytest.raises(TOOL.UnsupportedModelError, match="TRANSFORMER_DECODER_NAME='StandardTransformerDecoder'"):
        TOOL.hf_config_from_cfg(cfg)
    cfg = setup_cfg(os.path.join(CONFIGS, "coco", "panoptic-segmentation", "maskformer2_R50_bs16_50ep.yaml"),
                    ["MODEL.RESNETS.NUM_GROUPS", "32", "MODEL.SEM_SEG_HEAD.NORM", ""])
    with pytest.raises(TOOL.UnsupportedModelError, match=r"(?s)NUM_GROUPS=32.*NORM=''|NORM=''.*NUM_GROUPS=32"):
        TOOL.hf_config_from_cfg(cfg)
