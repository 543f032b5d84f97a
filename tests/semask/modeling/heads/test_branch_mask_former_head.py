"""BranchMaskFormerHead: MaskFormer's head (same modules and names) plus the semantic branch."""
import pytest
import torch

from mask_former.modeling import MaskFormerHead
from segcore.modeling import SEM_SEG_HEADS_REGISTRY, build_backbone, build_sem_seg_head
from semask.modeling.heads import BranchMaskFormerHead
from tests.semask.tiny import NUM_CLASSES, tiny_cfg


@pytest.fixture(scope="module", params=["maskformer", "mask2former"])
def built(request):
    cfg = tiny_cfg(request.param)
    torch.manual_seed(0)
    backbone = build_backbone(cfg).eval()
    head = build_sem_seg_head(cfg, backbone.output_shape()).eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 64, 96))
    return cfg, backbone, head, features


def test_registered_under_the_original_name_with_maskformer_heads_state_dict(built):
    cfg, backbone, head, _ = built
    assert SEM_SEG_HEADS_REGISTRY.get("BranchMaskFormerHead") is BranchMaskFormerHead
    assert isinstance(head, BranchMaskFormerHead) and isinstance(head, MaskFormerHead)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.SEM_SEG_HEAD.NAME = "MaskFormerHead"
    plain = build_sem_seg_head(cfg, backbone.output_shape())
    assert [(k, v.shape) for k, v in head.state_dict().items()] == \
        [(k, v.shape) for k, v in plain.state_dict().items()]
    assert head.sem_head.feature_strides == [4, 8, 16, 32]


def test_outputs_in_eval_and_training(built):
    _, _, head, features = built
    with torch.no_grad():
        out = head.eval()(features)
        assert {"pred_logits", "pred_masks", "aux_outputs", "semantic_stage_maps"} == set(out)
        assert [tuple(m.shape) for m in out["semantic_stage_maps"]] == \
            [(2, NUM_CLASSES, 16 // 2 ** i, 24 // 2 ** i) for i in range(4)]
        assert all(m is features[f"res{i + 2}_sem_seg"] for i, m in enumerate(out["semantic_stage_maps"]))
        train = head.train()(features)
        head.eval()
    assert train["semantic_prior"].shape == (2, NUM_CLASSES, 64, 96)  # the padded input size
    torch.testing.assert_close(train["semantic_prior"], head.semantic_prior(features))


def test_features_without_semantic_maps_are_an_error(built):
    _, _, head, features = built
    plain = {k: v for k, v in features.items() if not k.endswith("_sem_seg")}
    with pytest.raises(ValueError, match=r"res2_sem_seg.*D2SeMaskSwinTransformer"):
        head(plain)
