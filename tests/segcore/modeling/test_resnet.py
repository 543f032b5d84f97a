"""ResNet: Detectron2 names and shapes, depths, strides, freezing, the DeepLab stem and multi-grid."""
import pytest
import torch

from tests.reference_utils import reference_keys
from segcore.config import get_cfg
from segcore.layers import FrozenBatchNorm2d
from segcore.modeling import build_backbone


def _cfg(**resnets):
    cfg = get_cfg()
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    for k, v in resnets.items():
        setattr(cfg.MODEL.RESNETS, k, v)
    return cfg


def test_r50_names_and_shapes_equal_detectron2():
    model = build_backbone(_cfg(STRIDE_IN_1X1=False))
    ref = [(k[len("backbone."):], s) for k, s in reference_keys("mf_ade20k_sem_R50") if k.startswith("backbone.")]
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == ref


@pytest.mark.parametrize("depth,channels,params_m", [(18, [64, 128, 256, 512], 11.2), (34, [64, 128, 256, 512], 21.3),
                                                     (50, [256, 512, 1024, 2048], 23.5),
                                                     (101, [256, 512, 1024, 2048], 42.5)])
def test_depths_output_shapes_and_sizes(depth, channels, params_m):
    cfg = _cfg(DEPTH=depth, RES2_OUT_CHANNELS=64 if depth < 50 else 256)
    model = build_backbone(cfg)
    out = model(torch.zeros(1, 3, 67, 99))
    for name, c, s in zip(["res2", "res3", "res4", "res5"], channels, [4, 8, 16, 32]):
        assert out[name].shape == (1, c, -(-67 // s), -(-99 // s)), name
        assert model.output_shape()[name].channels == c and model.output_shape()[name].stride == s
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert n == pytest.approx(params_m, rel=0.02)  # torchvision's counts without the fc layer


def test_stride_in_1x1_moves_the_stride():
    a = build_backbone(_cfg(STRIDE_IN_1X1=True))
    b = build_backbone(_cfg(STRIDE_IN_1X1=False))
    assert a.res3[0].conv1.stride == (2, 2) and a.res3[0].conv2.stride == (1, 1)
    assert b.res3[0].conv1.stride == (1, 1) and b.res3[0].conv2.stride == (2, 2)


def test_freeze_at_stops_gradients_and_freezes_norms():
    cfg = _cfg(NORM="BN")
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    model = build_backbone(cfg)
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.res2.parameters())
    assert all(p.requires_grad for p in model.res3.parameters())
    assert isinstance(model.stem.conv1.norm, FrozenBatchNorm2d)
    assert isinstance(model.res2[0].conv1.norm, FrozenBatchNorm2d)
    assert isinstance(model.res3[0].conv1.norm, torch.nn.BatchNorm2d)


def test_build_resnet_backbone_ignores_the_deeplab_keys_as_detectron2():
    # STEM_TYPE and RES5_MULTI_GRID are DeepLab keys: only build_resnet_deeplab_backbone reads them
    cfg = _cfg(DEPTH=50, STEM_TYPE="deeplab", RES5_DILATION=2, RES5_MULTI_GRID=[1, 2, 4])
    model = build_backbone(cfg)
    assert model.stem.conv1.weight.shape == (64, 3, 7, 7) and not hasattr(model.stem, "conv2")
    assert [blk.conv2.dilation for blk in model.res5] == [(2, 2), (2, 2), (2, 2)]
    out = model(torch.zeros(1, 3, 64, 64))
    assert out["res5"].shape[-2:] == (4, 4)  # dilated res5 keeps stride 16
    assert model.output_shape()["res5"].stride == 16


def test_the_deeplab_defaults_are_those_of_add_deeplab_config():
    r = get_cfg().MODEL.RESNETS
    assert r.STEM_TYPE == "deeplab" and list(r.RES5_MULTI_GRID) == [1, 2, 4]


def test_out_features_subset_and_errors():
    model = build_backbone(_cfg(OUT_FEATURES=["res3"]))
    assert set(model(torch.zeros(1, 3, 32, 32))) == {"res3"}
    assert not hasattr(model, "res4")  # unused stages are not built
    with pytest.raises(ValueError, match="res6"):
        build_backbone(_cfg(OUT_FEATURES=["res6"]))
    with pytest.raises(ValueError, match="DEPTH"):
        build_backbone(_cfg(DEPTH=42))
    with pytest.raises(ValueError, match="Unknown norm"):
        build_backbone(_cfg(NORM="XX"))


# --- build_resnet_deeplab_backbone (Detectron2 projects/DeepLab; the original R101c configs) ---
def _deeplab_cfg(**resnets):
    cfg = _cfg(**resnets)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_deeplab_backbone"
    return cfg


R101C = dict(DEPTH=101, STEM_TYPE="deeplab", STEM_OUT_CHANNELS=128, STRIDE_IN_1X1=False, RES5_MULTI_GRID=[1, 2, 4])


def test_deeplab_builder_is_registered_and_builds_the_r101c_backbone():
    model = build_backbone(_deeplab_cfg(**R101C))
    keys = model.state_dict().keys()
    assert {"stem.conv1.weight", "stem.conv2.weight", "stem.conv3.weight"} <= set(keys)
    assert model.stem.conv1.weight.shape == (64, 3, 3, 3) and model.stem.conv2.weight.shape == (64, 64, 3, 3)
    assert model.stem.conv3.weight.shape == (128, 64, 3, 3)
    assert [len(getattr(model, f"res{i}")) for i in range(2, 6)] == [3, 4, 23, 3]
    # R101c as released: RES5_DILATION 1 (the default), multi-grid (1, 2, 4), res5 still strided
    assert [blk.conv2.dilation for blk in model.res5] == [(1, 1), (2, 2), (4, 4)]
    assert [blk.conv2.padding for blk in model.res5] == [(1, 1), (2, 2), (4, 4)]
    assert model.res5[0].conv2.stride == (2, 2)
    out = model(torch.zeros(1, 3, 64, 96))
    for name, c, s in zip(["res2", "res3", "res4", "res5"], [256, 512, 1024, 2048], [4, 8, 16, 32]):
        assert out[name].shape == (1, c, 64 // s, 96 // s), name
        assert model.output_shape()[name].stride == s


def test_deeplab_builder_reuses_the_resnet_of_build_resnet_backbone():
    """Same module tree (names, shapes) and, with the same weights, the same outputs as
    build_resnet_backbone for a config both accept."""
    torch.manual_seed(0)
    same = dict(R101C, STEM_TYPE="basic", STEM_OUT_CHANNELS=64, RES5_MULTI_GRID=[1, 1, 1], NORM="BN")
    a = build_backbone(_deeplab_cfg(**same)).eval()
    cfg = _cfg(**same)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    b = build_backbone(cfg).eval()
    assert type(a) is type(b)
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    assert all(torch.equal(ya[k], yb[k]) for k in ya)


def test_deeplab_builder_basic_stem_and_dilated_stages():
    model = build_backbone(_deeplab_cfg(DEPTH=50, STEM_TYPE="basic", RES4_DILATION=2, RES5_DILATION=4,
                                        RES5_MULTI_GRID=[1, 2, 4]))
    assert "stem.conv3.weight" not in model.state_dict() and model.stem.conv1.weight.shape == (64, 3, 7, 7)
    assert {blk.conv2.dilation for blk in model.res4} == {(2, 2)}
    assert [blk.conv2.dilation for blk in model.res5] == [(4, 4), (8, 8), (16, 16)]
    out = model(torch.zeros(1, 3, 64, 64))
    assert out["res4"].shape[-2:] == (8, 8) and out["res5"].shape[-2:] == (8, 8)  # output stride 8
    assert model.output_shape()["res5"].stride == 8
    # Strides follow RES5_DILATION, not the multi-grid: an undilated res5 still halves the size.
    model = build_backbone(_deeplab_cfg(DEPTH=50, RES5_MULTI_GRID=[2, 2, 2]))
    assert [blk.conv2.dilation for blk in model.res5] == [(2, 2)] * 3 and model.output_shape()["res5"].stride == 32


@pytest.mark.parametrize("resnets,match", [
    (dict(RES5_MULTI_GRID=[1, 2]), "RES5_MULTI_GRID"),
    (dict(RES5_MULTI_GRID=[1, 2, 4, 8]), "RES5_MULTI_GRID"),
    (dict(RES5_DILATION=3), "RES5_DILATION"),
    (dict(RES4_DILATION=4, RES5_DILATION=4), "RES4_DILATION"),
    (dict(RES4_DILATION=2, RES5_DILATION=2), "RES5_DILATION must be 4"),
    (dict(DEPTH=18, RES2_OUT_CHANNELS=64), "50/101/152"),
    (dict(STEM_TYPE="resnext"), "STEM_TYPE"),
])
def test_deeplab_builder_rejects_what_detectron2_rejects(resnets, match):
    with pytest.raises(ValueError, match=match):
        build_backbone(_deeplab_cfg(**resnets))
