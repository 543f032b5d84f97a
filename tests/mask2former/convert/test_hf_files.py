"""mask2former.convert against Hugging Face transformers' Mask2Former, both ways.

A tiny, randomly initialized ``Mask2FormerForUniversalSegmentation`` (every weight perturbed, so a
swapped or misplaced tensor shows) is written with ``save_pretrained``, converted to our names
(:func:`convert_hf_folder_to_d2`), loaded strictly into our model built from the written config,
and both models run on a real photograph (normalized by HF's image processor for HF and by our
model for ours): class and mask logits, final and auxiliary, agree within 1e-4. The converted
weights then go back to an HF folder (:func:`convert_d2_to_hf_folder`), which ``from_pretrained``
loads into the original state dict exactly. Both supported backbones (Swin, ResNet through
``ResNetConfig``) are covered.
"""
from __future__ import annotations

import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from segcore.checkpoint import Checkpointer, safe_load
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.e2e_utils import MASKFORMER_QUICKSTART
from tests.mask2former.convert.hf_models import (
    DEC_LAYERS,
    HEIGHT,
    NUM_LABELS,
    NUM_QUERIES,
    STAGES,
    WIDTH,
    hf_config,
    max_differences,
    perturbed_hf_model,
    photo,
    run_hf,
    run_ours,
)
from tests.paths import CONFIGS

transformers = pytest.importorskip("transformers")
pytest.importorskip("skimage.data")
safetensors_torch = pytest.importorskip("safetensors.torch")

from mask2former.convert import (  # noqa: E402
    UnsupportedModelError,
    convert_d2_to_hf,
    convert_d2_to_hf_folder,
    convert_hf_folder_to_d2,
    convert_hf_to_d2,
    hf_config_from_cfg,
    hf_config_to_overrides,
)

ATOL = 1e-4


@pytest.fixture(scope="module", params=["swin", "resnet"])
def converted(request, tmp_path_factory):
    """The HF model, its folder, the converted file and config, our model loaded from them, and
    both models' outputs on the photograph."""
    backbone = request.param
    root = tmp_path_factory.mktemp(f"hf_m2f_{backbone}")
    hf = perturbed_hf_model(backbone)
    hf.save_pretrained(root / "hf")
    weights = root / "m2f.pkl"
    # the conversion's own check (our model built from the written config) is what the strict load
    # below does; it is exercised by test_hf_shape_mismatch_is_refused_naming_both_keys
    result = convert_hf_folder_to_d2(str(root / "hf"), str(weights), check=False)
    cfg = setup_cfg(result.config, ["MODEL.DEVICE", "cpu"])
    ours = build_model(cfg).eval()
    checkpointer = Checkpointer(ours)
    checkpointer.load(str(weights), strict=True)
    image = photo()
    return SimpleNamespace(backbone=backbone, root=root, hf=hf, weights=weights, result=result, cfg=cfg, ours=ours,
                           checkpointer=checkpointer, image=image, hf_out=run_hf(hf, image),
                           our_out=run_ours(ours, image))


def test_converted_file_loads_strictly(converted):
    incompatible = converted.checkpointer.incompatible_keys
    assert not incompatible.missing_keys and not incompatible.unexpected_keys and not incompatible.incorrect_shapes
    with open(converted.weights, "rb") as f:
        data = safe_load(f)
    assert data["matching_heuristics"] is False and "transformers" in data["__author__"]
    assert set(data["model"]) == set(converted.ours.state_dict())
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())
    if converted.backbone == "swin":  # SwinModel's pooled-output LayerNorm only
        assert set(converted.result.dropped) == {f"model.pixel_level_module.encoder.swin.layernorm.{p}"
                                                 for p in ("bias", "weight")}
    else:  # BatchNorm counters only
        assert converted.result.dropped and all(k.endswith("num_batches_tracked") for k in converted.result.dropped)


def test_written_config_matches_the_hf_config(converted):
    cfg, result = converted.cfg, converted.result
    with open(result.config) as f:
        text = f.read()
    assert text.startswith("# Written by tools/convert-hf-mask2former-to-d2.py from ")
    base = text.split("_BASE_:")[1].split("\n")[0].strip()
    assert os.path.isfile(os.path.join(os.path.dirname(result.config), base))
    assert os.path.samefile(os.path.join(os.path.dirname(result.config), base), result.base_config)
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
    assert result.overrides["MODEL.MASK_FORMER.NUM_OBJECT_QUERIES"] == NUM_QUERIES
    assert result.overrides["MODEL.SEM_SEG_HEAD.NUM_CLASSES"] == NUM_LABELS
    assert result.overrides["MODEL.WEIGHTS"] == str(converted.weights)
    assert any("no preprocessor_config.json" in note for note in result.notes)


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
    cls_diff, mask_diff = max_differences(ours, theirs)
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
        changed = run_ours(converted.ours, converted.image)
    finally:
        attn.in_proj_weight.copy_(saved)
    assert max(max_differences(changed, converted.hf_out)) > 1e-2


def test_live_and_saved_names_convert_alike(converted):
    """``save_pretrained`` writes older names than the live state dict (transformers 5 renames Swin's
    attention and nests it in ``swin.``); both convert to the same tensors."""
    live = convert_hf_to_d2(converted.hf.state_dict(), converted.hf.config).state_dict
    from_file = converted.ours.state_dict()
    assert set(live) == set(from_file)
    assert all(torch.equal(live[k], from_file[k]) for k in live)


@torch.no_grad()
def test_round_trip_back_to_hf(converted, tmp_path):
    out = tmp_path / "back"
    result = convert_d2_to_hf_folder(str(converted.weights), str(out), config_file=converted.result.config)
    assert result.backbone_type == converted.backbone and not result.flipped_to_rgb and not result.notes
    reloaded = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(str(out)).eval()
    original, back = converted.hf.state_dict(), reloaded.state_dict()
    assert set(original) == set(back)
    differ = [k for k in original if not torch.equal(original[k], back[k])]
    assert not differ, differ
    for (ac, am), (bc, bm) in zip(run_hf(reloaded, converted.image), converted.hf_out):
        torch.testing.assert_close(ac, bc, atol=0, rtol=0)
        torch.testing.assert_close(am, bm, atol=0, rtol=0)
    with open(out / "preprocessor_config.json") as f:
        pre = json.load(f)
    np.testing.assert_allclose(pre["image_mean"], [0.485, 0.456, 0.406], atol=1e-6)
    np.testing.assert_allclose(pre["image_std"], [0.229, 0.224, 0.225], atol=1e-6)
    # and forward again, now with a preprocessor_config.json to read the normalization from (.pth this time)
    again = convert_hf_folder_to_d2(str(out), str(tmp_path / "again.pth"), check=False)
    assert again.overrides["MODEL.PIXEL_MEAN"] == [123.675, 116.28, 103.53]
    assert again.overrides["MODEL.PIXEL_STD"] == [58.395, 57.12, 57.375]
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
    result = convert_d2_to_hf_folder(str(tmp_path / "bgr.pth"), str(tmp_path / "hf"), config_file=converted.result.config,
                                     opts=["INPUT.FORMAT", "BGR", "MODEL.PIXEL_MEAN", str(mean), "MODEL.PIXEL_STD", str(std)])
    assert result.flipped_to_rgb
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
        convert_hf_folder_to_d2(str(tmp_path / "hf"), str(tmp_path / "out.pkl"))
    assert not (tmp_path / "out.pkl").exists() and not (tmp_path / "out.yaml").exists()


def test_hf_shape_mismatch_is_refused_naming_both_keys(converted, tmp_path):
    if converted.backbone != "swin":
        pytest.skip("the error path does not depend on the backbone")
    state = _copy_hf_folder(converted, tmp_path / "hf")  # config.json still says 5 labels (6 rows)
    state["class_predictor.weight"] = torch.zeros(NUM_LABELS + 2, 64)
    safetensors_torch.save_file(state, str(tmp_path / "hf" / "model.safetensors"))
    with pytest.raises(ValueError, match=r"(?s)sem_seg_head\.predictor\.class_embed\.weight' \(7, 64\).*"
                                         r"class_predictor\.weight.*\(6, 64\)"):
        convert_hf_folder_to_d2(str(tmp_path / "hf"), str(tmp_path / "out.pth"))
    assert not (tmp_path / "out.pth").exists() and not (tmp_path / "out.yaml").exists()


def test_an_output_of_another_kind_writes_nothing(converted, tmp_path):
    if converted.backbone != "swin":
        pytest.skip("the error path does not depend on the backbone")
    with pytest.raises(ValueError, match=r"\.pkl.*\.pth"):
        convert_hf_folder_to_d2(str(converted.root / "hf"), str(tmp_path / "out.bin"), check=False)
    assert not (tmp_path / "out.bin").exists() and not (tmp_path / "out.yaml").exists()


def test_d2_shape_mismatch_is_refused_naming_both_keys(converted):
    ours = dict(converted.ours.state_dict())
    ours["sem_seg_head.predictor.query_feat.weight"] = torch.zeros(NUM_QUERIES + 1, 64)
    with pytest.raises(ValueError, match=r"query_feat\.weight' \(11, 64\).*queries_features\.weight' \(10, 64\)"):
        convert_d2_to_hf(ours, converted.hf.state_dict(), converted.backbone)
    ours = dict(converted.ours.state_dict(), **{"sem_seg_head.predictor.extra.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"predictor\.extra\.weight"):
        convert_d2_to_hf(ours, converted.hf.state_dict(), converted.backbone)


def test_unsupported_hf_features_are_reported():
    config = hf_config("swin")
    config.backbone_config.use_absolute_embeddings = True
    config.activation_function = "gelu"
    with pytest.raises(UnsupportedModelError, match=r"(?s)use_absolute_embeddings.*activation_function='gelu'"):
        hf_config_to_overrides(config)
    config = transformers.Mask2FormerConfig(backbone_config=transformers.ConvNextConfig(out_features=STAGES))
    with pytest.raises(UnsupportedModelError, match="'convnext' is not supported"):
        hf_config_to_overrides(config)


def test_unsupported_our_model_is_reported():
    cfg = setup_cfg(MASKFORMER_QUICKSTART, ["MODEL.DEVICE", "cpu"])  # MaskFormer, not Mask2Former
    with pytest.raises(UnsupportedModelError, match="TRANSFORMER_DECODER_NAME='StandardTransformerDecoder'"):
        hf_config_from_cfg(cfg)
    cfg = setup_cfg(os.path.join(CONFIGS, "coco", "panoptic-segmentation", "maskformer2_R50_bs16_50ep.yaml"),
                    ["MODEL.RESNETS.NUM_GROUPS", "32", "MODEL.SEM_SEG_HEAD.NORM", ""])
    with pytest.raises(UnsupportedModelError, match=r"(?s)NUM_GROUPS=32.*NORM=''|NORM=''.*NUM_GROUPS=32"):
        hf_config_from_cfg(cfg)
