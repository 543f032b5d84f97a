"""MaskFormer's optimizer parameter groups, used by every model of the family (and only by them)."""
import pytest

from mask_former.solver import get_mask_former_param_groups
from segcore.solver import build_optimizer
from tests.segcore.solver.test_solver import ToyModel


def test_mask_former_param_groups_lr_and_weight_decay():
    model = ToyModel()
    groups = get_mask_former_param_groups(model, base_lr=0.1, weight_decay=0.05, weight_decay_norm=0.01,
                                          weight_decay_embed=0.02, backbone_multiplier=0.1)
    by_param = {id(g["params"][0]): (g["lr"], g["weight_decay"]) for g in groups}
    expected = {
        model.backbone.conv.weight: (0.01, 0.05),
        model.backbone.conv.bias: (0.01, 0.05),  # biases are not special here
        model.backbone.bn.weight: (0.01, 0.01),
        model.backbone.absolute_pos_embed: (0.01, 0.0),
        model.norm.weight: (0.1, 0.01),
        model.gn.bias: (0.1, 0.01),
        model.query_embed.weight: (0.1, 0.02),
        model.predictor.weight: (0.1, 0.05),
        model.relative_position_bias_table: (0.1, 0.0),
    }
    for p, (lr, wd) in expected.items():
        assert by_param[id(p)] == (pytest.approx(lr), pytest.approx(wd))
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(by_param) == trainable and len(groups) == len(trainable)


def _tiny_cfg(mf_cfg, **solver):
    mf_cfg.merge_from_list(["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
                            "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "16",
                            "MODEL.MASK_FORMER.HIDDEN_DIM", "16", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "32",
                            "MODEL.MASK_FORMER.DEC_LAYERS", "1", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "4",
                            "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "4", "MODEL.RESNETS.OUT_FEATURES",
                            "['res2', 'res3', 'res4', 'res5']", "MODEL.SEM_SEG_HEAD.IN_FEATURES",
                            "['res2', 'res3', 'res4', 'res5']", "SOLVER.BASE_LR", "0.1",
                            "SOLVER.BACKBONE_MULTIPLIER", "0.25", "SOLVER.BIAS_LR_FACTOR", "3.0"])
    return mf_cfg


@pytest.mark.parametrize("arch,head", [("MaskFormer", "MaskFormerHead"), ("SemanticSegmentor", "PerPixelBaselineHead")])
def test_models_of_the_family_train_with_the_backbone_multiplier(mf_cfg, arch, head):
    from segcore.modeling import build_model

    cfg = _tiny_cfg(mf_cfg)
    cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.SEM_SEG_HEAD.NAME = arch, head
    model = build_model(cfg)
    opt = build_optimizer(cfg, model)
    lr = {id(g["params"][0]): g["lr"] for g in opt.param_groups}
    assert lr[id(model.backbone.res3[0].conv1.weight)] == pytest.approx(0.025)
    assert lr[id(model.sem_seg_head.pixel_decoder.mask_features.bias)] == pytest.approx(0.1)  # no BIAS_LR_FACTOR


def test_a_detectron2_semantic_model_keeps_detectron2_param_groups(mf_cfg):
    """With mask_former installed, a SemanticSegmentor with a non-MaskFormer head (SemSegFPNHead)
    still gets Detectron2's policy: BIAS_LR_FACTOR counts, BACKBONE_MULTIPLIER does not."""
    from segcore.modeling import build_model

    cfg = _tiny_cfg(mf_cfg)
    cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.SEM_SEG_HEAD.NAME = "SemanticSegmentor", "SemSegFPNHead"
    cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["res2", "res3"]
    cfg.MODEL.SEM_SEG_HEAD.NORM = ""
    model = build_model(cfg)
    opt = build_optimizer(cfg, model)
    lr = {id(g["params"][0]): g["lr"] for g in opt.param_groups}
    assert lr[id(model.backbone.res3[0].conv1.weight)] == pytest.approx(0.1)
    assert lr[id(model.sem_seg_head.predictor.bias)] == pytest.approx(0.3)
