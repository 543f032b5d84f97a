"""D2SeMaskSwinTransformer: Swin extended with a Semantic Layer per stage; its outputs, names,
which stages attend within windows, and its construction from a config."""
import pytest
import torch

from mask_former.modeling.backbone.swin import D2SwinTransformer
from segcore.config import get_cfg
from segcore.modeling import BACKBONE_REGISTRY, build_backbone
from semask import add_semask_config
from semask.modeling.backbone import D2SeMaskSwinTransformer, SeMaskBasicLayer, semantic_window_stages

TINY = dict(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=4, drop_path_rate=0.0)


def _open_gates(model, gamma=0.5):
    with torch.no_grad():
        for layer in model.layers:
            for block in layer.semantic_layer.class_injection:
                block.gamma.fill_(gamma)
                torch.nn.init.normal_(block.mlp_res.weight, std=0.3)


def test_it_returns_the_features_and_one_semantic_map_per_stage():
    torch.manual_seed(0)
    model = D2SeMaskSwinTransformer(num_classes=5, sem_window_size=4, **TINY).eval()
    out = model(torch.randn(2, 3, 64, 96))
    sizes = [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert set(out) == {f"res{i}" for i in range(2, 6)} | {f"res{i}_sem_seg" for i in range(2, 6)}
    for i, (h, w) in zip(range(2, 6), sizes):
        assert out[f"res{i}"].shape == (2, 8 * 2 ** (i - 2), h, w)
        assert out[f"res{i}_sem_seg"].shape == (2, 5, h, w)
    assert set(model.output_shape()) == {"res2", "res3", "res4", "res5"}  # heads are built from the features
    assert BACKBONE_REGISTRY.get("D2SeMaskSwinTransformer") is D2SeMaskSwinTransformer
    assert isinstance(model, D2SwinTransformer) and all(isinstance(s, SeMaskBasicLayer) for s in model.layers)


def test_out_features_select_the_stages_and_their_maps():
    model = D2SeMaskSwinTransformer(num_classes=3, out_features=["res3", "res5"], **TINY).eval()
    out = model(torch.zeros(1, 3, 64, 64))
    assert set(out) == {"res3", "res5", "res3_sem_seg", "res5_sem_seg"}


def test_the_semantic_layer_sits_between_the_blocks_and_the_downsampling():
    """State-dict order as the original (blocks, semantic_layer, downsample), and the features of
    the next stage come from the semantic layer's output."""
    torch.manual_seed(0)
    model = D2SeMaskSwinTransformer(num_classes=3, num_sem_blocks=2, **TINY).eval()
    names = [k for k in model.state_dict() if k.startswith("layers.0.")]
    first = {part: min(i for i, k in enumerate(names) if k.startswith(f"layers.0.{part}"))
             for part in ["blocks", "semantic_layer", "downsample"]}
    assert first["blocks"] < first["semantic_layer"] < first["downsample"]
    assert "layers.0.semantic_layer.class_injection.1.mlp_cls_k.weight" in names
    assert not any(k.startswith("layers.3.downsample") for k in model.state_dict())

    model = D2SeMaskSwinTransformer(num_classes=3, **TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    before = model(x)
    _open_gates(model)
    after = model(x)
    # stage 1's semantic maps do not depend on its own gate; its features and every later stage do
    torch.testing.assert_close(after["res2_sem_seg"], before["res2_sem_seg"])
    assert not torch.allclose(after["res2"], before["res2"])
    assert not torch.allclose(after["res3_sem_seg"], before["res3_sem_seg"])


def test_the_last_stage_attends_globally_for_ade20k_only():
    assert semantic_window_stages(150) == (0, 1, 2)
    assert semantic_window_stages(19) == (0, 1, 2, 3)
    assert semantic_window_stages(150, num_stages=3) == (0, 1)
    ade = D2SeMaskSwinTransformer(num_classes=150, sem_window_size=3, **TINY)
    assert [layer.semantic_layer.window_size for layer in ade.layers] == [3, 3, 3, None]
    city = D2SeMaskSwinTransformer(num_classes=19, sem_window_size=3, **TINY)
    assert [layer.semantic_layer.window_size for layer in city.layers] == [3, 3, 3, 3]
    chosen = D2SeMaskSwinTransformer(num_classes=19, windowed_semantic_stages=[1], **TINY)
    assert [layer.semantic_layer.window_size for layer in chosen.layers] == [None, 7, None, None]


def test_a_windowed_last_stage_changes_its_output():
    """With a 4x4 last-stage map and 2x2 windows, global and windowed attention differ."""
    torch.manual_seed(0)
    windowed = D2SeMaskSwinTransformer(num_classes=4, sem_window_size=2, windowed_semantic_stages=[0, 1, 2, 3],
                                       **TINY).eval()
    global_last = D2SeMaskSwinTransformer(num_classes=4, sem_window_size=2, windowed_semantic_stages=[0, 1, 2],
                                          **TINY).eval()
    _open_gates(windowed)
    global_last.load_state_dict(windowed.state_dict())
    x = torch.randn(1, 3, 128, 128)
    a, b = windowed(x), global_last(x)
    torch.testing.assert_close(a["res4"], b["res4"])
    assert not torch.allclose(a["res5"], b["res5"], atol=1e-4)


def test_invalid_settings_are_errors():
    with pytest.raises(ValueError, match="windowed_semantic_stages"):
        D2SeMaskSwinTransformer(num_classes=3, windowed_semantic_stages=[4], **TINY)
    with pytest.raises(ValueError, match="NUM_SEM_BLOCKS"):
        D2SeMaskSwinTransformer(num_classes=3, num_sem_blocks=0, **TINY)


def test_built_from_the_config():
    cfg = get_cfg()
    add_semask_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "D2SeMaskSwinTransformer"
    cfg.MODEL.SWIN.EMBED_DIM = 8
    cfg.MODEL.SWIN.NUM_HEADS = [1, 1, 2, 2]
    cfg.MODEL.SWIN.DEPTHS = [2, 2, 2, 2]
    cfg.MODEL.SWIN.NUM_SEM_BLOCKS = 2
    cfg.MODEL.SWIN.SEM_WINDOW_SIZE = 5
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 150
    model = build_backbone(cfg)
    assert isinstance(model, D2SeMaskSwinTransformer)
    assert [len(layer.semantic_layer.class_injection) for layer in model.layers] == [2] * 4
    assert [layer.semantic_layer.window_size for layer in model.layers] == [5, 5, 5, None]
    assert model.layers[2].semantic_layer.class_injection[0].mlp_cls_q.weight.shape == (150, 32)
    assert (cfg.MODEL.MASK_FORMER.CATE_WEIGHT, cfg.MODEL.SWIN.SEM_WINDOW_SIZE) == (0.4, 5)

    plain = get_cfg()
    from mask_former import add_mask_former_config

    add_mask_former_config(plain)
    plain.MODEL.BACKBONE.NAME = "D2SeMaskSwinTransformer"
    with pytest.raises(KeyError, match="add_semask_config"):
        build_backbone(plain)
