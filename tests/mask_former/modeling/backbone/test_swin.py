"""The Swin Transformer backbone: shapes at any size, names, attention mask, stochastic depth,
activation checkpointing, and the ADE20K-150 Swin configs."""
from __future__ import annotations

import glob
import os

import pytest
import torch

from mask_former import add_swin_config
from mask_former.modeling.backbone.swin import (
    D2SwinTransformer,
    DropPath,
    SwinTransformer,
    SwinTransformerBlock,
    relative_position_index,
    shifted_window_attention_mask,
    window_partition,
    window_reverse,
)
from tests.reference_utils import fill_name_seeded, reference_keys
from segcore.config import get_cfg
from segcore.modeling import build_backbone
from tests.paths import REPO_ROOT

REPO = REPO_ROOT
TINY = dict(embed_dim=8, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2], window_size=7)


def _tiny_backbone(**kwargs) -> D2SwinTransformer:
    args = dict(TINY, drop_path_rate=0.0)
    args.update(kwargs)
    model = D2SwinTransformer(**args)
    fill_name_seeded(model)
    return model


@pytest.mark.parametrize("height,width", [(65, 97), (224, 224), (3, 5)])
def test_output_shapes_and_strides_at_any_size(height, width):
    model = _tiny_backbone().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, height, width))
    shapes = model.output_shape()
    assert list(out) == ["res2", "res3", "res4", "res5"]
    for i, name in enumerate(out):
        stride = 4 * 2**i
        assert shapes[name].stride == stride and shapes[name].channels == 8 * 2**i
        assert out[name].shape == (2, 8 * 2**i, -(-height // stride), -(-width // stride)), name
        assert torch.isfinite(out[name]).all()
    assert model.size_divisibility == 32


def test_padding_does_not_leak_into_the_image_region():
    """Outputs for an odd-size image equal those at the size padded to the patch size (the model
    pads with zeros itself), so the padding is done once, consistently, at the right / bottom."""
    model = _tiny_backbone().eval()
    x = torch.randn(1, 3, 37, 49)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 3))
    with torch.no_grad():
        a, b = model(x), model(padded)
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_out_features_subset_and_errors():
    model = _tiny_backbone(out_features=["res3", "res5"]).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert list(out) == ["res3", "res5"] and list(model.output_shape()) == ["res3", "res5"]
    with pytest.raises(ValueError, match="res6"):
        _tiny_backbone(out_features=["res6"])
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(3, 64, 64))


def test_state_dict_names_shapes_and_order_equal_the_original_swin_t():
    cfg = get_cfg()
    add_swin_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "D2SwinTransformer"
    backbone = build_backbone(cfg)
    ours = [(f"backbone.{k}", tuple(v.shape)) for k, v in backbone.state_dict().items()]
    assert ours == [(k, s) for k, s in reference_keys("m2f_coco_pan_SwinT") if k.startswith("backbone.")]
    assert backbone.state_dict()["layers.0.blocks.0.attn.relative_position_index"].dtype == torch.int64


def test_absolute_position_embedding_is_interpolated():
    model = _tiny_backbone(ape=True, pretrain_img_size=64).eval()
    names = list(model.state_dict())
    assert names[0] == "absolute_pos_embed" and model.absolute_pos_embed.shape == (1, 8, 16, 16)
    x = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        with_ape = model(x)["res2"]
        model.absolute_pos_embed.zero_()
        without = model(x)["res2"]
    assert with_ape.shape == (1, 8, 13, 18)
    assert not torch.allclose(with_ape, without)


def test_relative_position_index_window_2_by_hand():
    # tokens (0,0), (0,1), (1,0), (1,1); index = (dy + 1) * 3 + (dx + 1), dy = y_i - y_j, dx = x_i - x_j
    expected = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index((2, 2)), expected)
    assert relative_position_index((7, 7)).max() == 13 * 13 - 1


def test_window_partition_and_reverse():
    x = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).view(2, 4, 6, 3)
    windows = window_partition(x, 2)
    assert windows.shape == (12, 2, 2, 3)
    torch.testing.assert_close(windows[1], x[0, 0:2, 2:4])  # second window of image 0: row 0, column 1
    torch.testing.assert_close(window_reverse(windows, 2, 4, 6), x)


def test_shifted_window_mask_by_hand():
    # 4x4 map, window 2, shift 1: rows / columns fall in bands [0, 2), [2, 3), [3, 4)
    mask = shifted_window_attention_mask(4, 4, window_size=2, shift_size=1)
    assert mask.shape == (4, 4, 4)
    assert (mask[0] == 0).all()  # top-left window lies in one region
    top_right = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask[1] != 0, top_right)  # columns 2 and 3 are different regions
    assert torch.equal(mask[3] != 0, ~torch.eye(4, dtype=torch.bool))  # 4 regions
    assert set(mask.unique().tolist()) == {0.0, -100.0}


def test_tokens_in_different_shift_regions_do_not_attend():
    """In a shifted block on a 4x4 map (window 2, shift 1), the rolled bottom-right window holds
    the image corners (0,0), (0,3), (3,0), (3,3): each must only see itself. Tokens (1,1) and
    (2,2) share a window and a region, so they do interact."""
    torch.manual_seed(0)
    block = SwinTransformerBlock(dim=4, num_heads=1, window_size=2, shift_size=1).eval()
    mask = shifted_window_attention_mask(4, 4, 2, 1)
    x = torch.randn(1, 16, 4)
    moved = x.clone()
    moved[0, 3 * 4 + 3] = torch.randn(4)  # token (3, 3)
    moved[0, 2 * 4 + 2] = torch.randn(4)  # token (2, 2)
    with torch.no_grad():
        a, b = block(x, 4, 4, mask), block(moved, 4, 4, mask)
        unmasked = block(moved, 4, 4, None)
        reference = block(x, 4, 4, None)
    torch.testing.assert_close(a[0, 0], b[0, 0])  # (0, 0) does not see (3, 3)
    assert not torch.allclose(a[0, 1 * 4 + 1], b[0, 1 * 4 + 1])  # (1, 1) sees (2, 2)
    assert not torch.allclose(reference[0, 0], unmasked[0, 0])  # without the mask it would see (3, 3)


def test_drop_path_identity_in_eval_and_stochastic_in_train():
    drop = DropPath(0.5)
    x = torch.ones(256, 3, 2)
    drop.eval()
    assert torch.equal(drop(x), x)
    drop.train()
    torch.manual_seed(0)
    y1, y2 = drop(x), drop(x)
    assert not torch.equal(y1, y2)
    per_sample = y1.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/0.5
    assert (per_sample == per_sample[:, :1]).all()  # one decision per sample
    assert 0.35 < (per_sample[:, 0] == 0).float().mean() < 0.65
    with pytest.raises(ValueError):
        DropPath(1.0)


def test_drop_path_rate_increases_linearly_over_blocks():
    model = SwinTransformer(**TINY, drop_path_rate=0.7)
    rates = [b.drop_path.drop_prob if isinstance(b.drop_path, DropPath) else 0.0
             for layer in model.layers for b in layer.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.7, 8))


def test_activation_checkpointing_same_outputs_and_gradients():
    plain = _tiny_backbone().train()
    ckpt = _tiny_backbone(use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 30, 38)
    results = []
    for model in (plain, ckpt):
        inp = x.clone().requires_grad_(True)
        out = model(inp)
        loss = sum((v * (i + 1)).square().mean() for i, v in enumerate(out.values()))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((out, grads, inp.grad))
    (out_a, grads_a, gin_a), (out_b, grads_b, gin_b) = results
    for name in out_a:
        torch.testing.assert_close(out_a[name], out_b[name])
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)
    torch.testing.assert_close(gin_a, gin_b)
    assert gin_a.abs().sum() > 0


def test_frozen_stages_stay_frozen_in_train_mode():
    model = SwinTransformer(**TINY, frozen_stages=2)
    model.train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert not model.layers[0].training and model.layers[1].training


def test_missing_swin_keys_error_names_the_fix():
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "D2SwinTransformer"
    with pytest.raises(KeyError, match="add_swin_config"):
        build_backbone(cfg)


# file -> (EMBED_DIM, WINDOW_SIZE, PRETRAIN_IMG_SIZE, MODEL.WEIGHTS, crop size), as in MaskFormer's configs
SWIN_CONFIGS = {
    "maskformer_swin_tiny_bs16_160k.yaml": (96, 7, 224, "swin_tiny_patch4_window7_224.pkl", 512),
    "maskformer_swin_small_bs16_160k.yaml": (96, 7, 224, "swin_small_patch4_window7_224.pkl", 512),
    "maskformer_swin_base_IN21k_384_bs16_160k_res640.yaml":
        (128, 12, 384, "swin_base_patch4_window12_384_22k.pkl", 640),
    "maskformer_swin_large_IN21k_384_bs16_160k_res640.yaml":
        (192, 12, 384, "swin_large_patch4_window12_384_22k.pkl", 640),
}


def test_every_swin_config_is_listed():
    found = {os.path.basename(f) for f in glob.glob(os.path.join(REPO, "configs/ade20k-150/swin/*.yaml"))}
    assert found == set(SWIN_CONFIGS)


@pytest.mark.parametrize("name", sorted(SWIN_CONFIGS))
def test_swin_config_builds_the_full_model(name):
    from segcore.engine import setup_cfg
    from segcore.modeling import build_model

    embed_dim, window, pretrain, weights, crop = SWIN_CONFIGS[name]
    cfg = setup_cfg(os.path.join(REPO, "configs/ade20k-150/swin", name), ["MODEL.DEVICE", "cpu"])
    assert cfg.MODEL.WEIGHTS == weights
    assert tuple(cfg.INPUT.CROP.SIZE) == (crop, crop) and cfg.INPUT.MIN_SIZE_TEST == crop
    assert cfg.SOLVER.BASE_LR == pytest.approx(6e-5) and cfg.SOLVER.BACKBONE_MULTIPLIER == 1.0
    model = build_model(cfg)
    backbone = model.backbone
    assert type(backbone) is D2SwinTransformer
    channels = {k: v.channels for k, v in backbone.output_shape().items()}
    assert channels == {"res2": embed_dim, "res3": 2 * embed_dim, "res4": 4 * embed_dim, "res5": 8 * embed_dim}
    assert backbone.layers[0].blocks[0].attn.window_size == (window, window)
    assert backbone.layers[2].blocks[0].attn.relative_position_bias_table.shape[0] == (2 * window - 1) ** 2
    assert len(backbone.layers[2].blocks) == (6 if "tiny" in name else 18)
    assert cfg.MODEL.SWIN.PRETRAIN_IMG_SIZE == pretrain
