"""SeMaskSwinTransformer (SeMask-FPN's backbone): D2SeMaskSwinTransformer with the release's rule
for which Semantic Layers attend within windows."""
import pytest
import torch

from segcore.engine import setup_cfg
from segcore.modeling import BACKBONE_REGISTRY, build_backbone
from semask.modeling.backbone import D2SeMaskSwinTransformer
from semask.modeling.backbone.semask_fpn_swin import SeMaskSwinTransformer, fpn_semantic_window_stages
from tests.paths import CONFIGS

TINY = dict(depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=4, sem_window_size=4, drop_path_rate=0.0)


@pytest.mark.parametrize("embed_dim, num_classes, windowed", [
    (96, 150, (0, 1)),        # SeMask-T / S on ADE20K: the last two stages attend globally
    (192, 150, (0, 1)),       # SeMask-L on ADE20K
    (192, 171, (0, 1)),       # COCO-Stuff
    (128, 150, (0, 1, 2, 3)),  # SeMask-B: windows everywhere
    (96, 19, (0, 1, 2, 3)),   # Cityscapes: windows everywhere
    (192, 19, (0, 1, 2, 3)),
    (96, 20, (0, 1)),
    (32, 150, (0, 1, 2, 3)),  # another width
])
def test_the_windowed_stages_follow_the_release(embed_dim, num_classes, windowed):
    assert fpn_semantic_window_stages(embed_dim, num_classes) == windowed


def test_the_backbone_uses_the_rule_and_keeps_the_semask_swin_names():
    model = SeMaskSwinTransformer(num_classes=30, embed_dim=96, **TINY)
    assert [layer.semantic_layer.window_size for layer in model.layers] == [4, 4, None, None]
    maskformer_rule = D2SeMaskSwinTransformer(num_classes=30, embed_dim=96, **TINY)
    assert [layer.semantic_layer.window_size for layer in maskformer_rule.layers] == [4, 4, 4, 4]
    assert model.state_dict().keys() == maskformer_rule.state_dict().keys()
    assert BACKBONE_REGISTRY.get("SeMaskSwinTransformer") is SeMaskSwinTransformer
    # an explicit choice wins
    explicit = SeMaskSwinTransformer(num_classes=30, embed_dim=96, windowed_semantic_stages=[3], **TINY)
    assert [layer.semantic_layer.window_size for layer in explicit.layers] == [None, None, None, 4]


def test_global_late_stages_change_the_outputs_only_not_the_weights():
    torch.manual_seed(0)
    fpn = SeMaskSwinTransformer(num_classes=30, embed_dim=96, **TINY).eval()
    windowed = D2SeMaskSwinTransformer(num_classes=30, embed_dim=96, **TINY).eval()
    windowed.load_state_dict(fpn.state_dict())
    with torch.no_grad():
        for layer in fpn.layers:  # open the gates so that the attention pattern matters
            for block in layer.semantic_layer.class_injection:
                block.gamma.fill_(1.0)
                torch.nn.init.normal_(block.mlp_res.weight, std=0.3)
        windowed.load_state_dict(fpn.state_dict())
        x = torch.randn(1, 3, 256, 256)  # stage 3 is 16x16 tokens: 4x4 windows or one global map
        a, b = fpn(x), windowed(x)
    torch.testing.assert_close(a["res3"], b["res3"])
    assert not torch.allclose(a["res4"], b["res4"], atol=1e-4)


def test_built_from_a_config():
    path = f"{CONFIGS}/ade20k-150/semask_fpn/semfpn_semask_swin_tiny_bs16_80k.yaml"
    cfg = setup_cfg(path, ["MODEL.SWIN.DEPTHS", "[1, 1, 1, 1]", "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    backbone = build_backbone(cfg)
    assert isinstance(backbone, SeMaskSwinTransformer)
    assert [layer.semantic_layer.window_size for layer in backbone.layers] == [7, 7, None, None]
    cfg.defrost()
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 19
    assert [layer.semantic_layer.window_size for layer in build_backbone(cfg).layers] == [7, 7, 7, 7]
