"""BranchFPNHead: the Semantic-FPN head of SeMask-FPN (scale heads, dropout, classifier) with the
semantic-prior branch and its losses, under SemanticSegmentor."""
import pytest
import torch
import torch.nn.functional as F

from segcore.engine import setup_cfg
from segcore.layers import ShapeSpec
from segcore.modeling import SEM_SEG_HEADS_REGISTRY, SemSegFPNHead, build_model
from segcore.solver import build_optimizer
from semask.modeling.heads.branch_fpn_head import BranchFPNHead
from semask.modeling.heads.fpn_semantic_decoder import FPNSemanticPriorDecoder
from tests.paths import CONFIGS

SHAPES = {f"res{i + 2}": ShapeSpec(channels=8 * 2 ** i, stride=4 * 2 ** i) for i in range(4)}
K = 5


def _head(**kwargs):
    args = dict(num_classes=K, conv_dims=16, common_stride=4, norm="BN", ignore_value=255)
    args.update(kwargs)
    return BranchFPNHead(SHAPES, **args)


def _features(h=64, w=96, batch=2):
    g = torch.Generator().manual_seed(0)
    feats = {}
    for i in range(4):
        s = 4 * 2 ** i
        feats[f"res{i + 2}"] = torch.randn(batch, 8 * 2 ** i, h // s, w // s, generator=g)
        feats[f"res{i + 2}_sem_seg"] = torch.randn(batch, K, h // s, w // s, generator=g)
    return feats


def test_module_names_are_the_scale_heads_and_the_classifier():
    head = _head()
    names = set(head.state_dict())
    assert {"res2.0.weight", "res2.0.norm.running_var", "res3.0.weight", "res4.0.weight", "res4.2.weight",
            "res5.0.weight", "res5.2.norm.weight", "res5.4.weight", "predictor.weight", "predictor.bias"} <= names
    assert not any(k.startswith(("sem_head", "dropout")) for k in names)
    assert "res2.0.bias" not in names  # the conv before a norm has no bias, as mmcv's ConvModule
    assert isinstance(head, SemSegFPNHead) and SEM_SEG_HEADS_REGISTRY.get("BranchFPNHead") is BranchFPNHead
    assert isinstance(head.sem_head, FPNSemanticPriorDecoder) and head.sem_head.feature_strides == [4, 8, 16, 32]
    assert head.predictor.bias.abs().sum() == 0 and 0.005 < head.predictor.weight.std() < 0.02


def test_eval_returns_logits_at_the_input_resolution_and_ignores_the_semantic_maps():
    torch.manual_seed(0)
    head = _head().eval()
    feats = _features()
    logits, losses = head(feats)
    assert logits.shape == (2, K, 64, 96) and losses == {}
    feats_other_prior = dict(feats, res2_sem_seg=torch.zeros(2, K, 16, 24))
    torch.testing.assert_close(head(feats_other_prior)[0], logits)
    # the sum of the scale heads, then the classifier, upsampled by 4
    x = sum(F.interpolate(head.scale_heads[i](feats[f"res{i + 2}"]), size=(16, 24), mode="bilinear",
                          align_corners=False) for i in range(4))
    expected = F.interpolate(head.predictor(x), scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(logits, expected)


def test_inputs_that_do_not_divide_by_32_are_summed_at_the_finest_size():
    head = _head().eval()
    feats = {}
    for i, (h, w) in enumerate([(25, 13), (13, 7), (7, 4), (4, 2)]):
        feats[f"res{i + 2}"] = torch.randn(1, 8 * 2 ** i, h, w)
    assert head(feats)[0].shape == (1, K, 100, 52)


def test_training_returns_both_losses_with_their_weights():
    torch.manual_seed(0)
    head = _head(dropout=0.0, cate_weight=0.4, loss_weight=1.5, norm="").train()  # no BatchNorm statistics
    feats = _features()
    targets = torch.randint(0, K, (2, 64, 96))
    targets[:, :8] = 255
    out, losses = head(feats, targets)
    assert out is None and set(losses) == {"loss_sem_seg", "loss_cate"}
    prior = FPNSemanticPriorDecoder(feature_strides=[4, 8, 16, 32])([feats[f"res{i}_sem_seg"] for i in range(2, 6)])

    def mmseg_ce(logits):
        up = F.interpolate(logits, size=(64, 96), mode="bilinear", align_corners=False)
        return F.cross_entropy(up, targets, ignore_index=255, reduction="sum") / targets.numel()

    torch.testing.assert_close(losses["loss_cate"], 0.4 * mmseg_ce(prior))
    torch.testing.assert_close(losses["loss_sem_seg"], 1.5 * mmseg_ce(head.layers(feats)))
    # the prior's loss reaches the semantic maps (and so the backbone's Semantic Layers)
    maps = {k: v.requires_grad_() for k, v in feats.items()}
    _, losses = head(maps, targets)
    losses["loss_cate"].backward()
    assert maps["res5_sem_seg"].grad.abs().sum() > 0 and maps["res2"].grad is None


def test_ohem_counts_only_the_hardest_pixels():
    feats, targets = _features(batch=1), torch.randint(0, K, (1, 64, 96))
    full = _head(dropout=0.0, norm="").train()
    mined = _head(dropout=0.0, norm="", ohem_min_kept=100).train()
    mined.load_state_dict(full.state_dict())
    pixels = F.cross_entropy(F.interpolate(full.layers(feats), size=(64, 96), mode="bilinear", align_corners=False),
                             targets, reduction="none")
    torch.testing.assert_close(mined(feats, targets)[1]["loss_sem_seg"], pixels.flatten().topk(100).values.sum() / 6144)
    assert mined(feats, targets)[1]["loss_sem_seg"] < full(feats, targets)[1]["loss_sem_seg"]
    # the prior's loss is not mined
    torch.testing.assert_close(mined(feats, targets)[1]["loss_cate"], full(feats, targets)[1]["loss_cate"])


def test_dropout_is_channel_dropout_in_training_only():
    head = _head(dropout=0.5)
    assert isinstance(head.dropout, torch.nn.Dropout2d) and head.dropout.p == 0.5
    assert isinstance(_head(dropout=0.0).dropout, torch.nn.Identity)


def test_errors_name_the_problem():
    head = _head().train()
    feats = {k: v for k, v in _features().items() if not k.endswith("_sem_seg")}
    with pytest.raises(ValueError, match="semantic maps"):
        head(feats, torch.zeros(2, 64, 96, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        head(_features(), None)
    with pytest.raises(ValueError, match="COMMON_STRIDE"):
        _head(common_stride=2)
    with pytest.raises(ValueError, match="ohem_min_kept"):
        _head(ohem_min_kept=0)


def test_a_tiny_semask_fpn_trains_and_predicts_under_semantic_segmentor():
    path = f"{CONFIGS}/quickstart/semask_fpn_swin_quickstart.yaml"
    cfg = setup_cfg(path, ["MODEL.SWIN.EMBED_DIM", "8", "MODEL.SWIN.DEPTHS", "[1, 1, 1, 1]",
                           "MODEL.SWIN.NUM_HEADS", "[1, 1, 1, 1]", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "8",
                           "MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batch = [{"image": torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8),
              "sem_seg": torch.randint(0, 10, (64, 64))} for _ in range(2)]
    batch[1]["sem_seg"][:10] = 255
    losses = model(batch)
    assert set(losses) == {"loss_sem_seg", "loss_cate"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    gamma = model.backbone.layers[0].semantic_layer.class_injection[0].mlp_cls_q.weight
    assert gamma.grad is not None and gamma.grad.abs().sum() > 0  # the prior loss trains the Semantic Layers
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8), "height": 100, "width": 140}])
    assert out[0]["sem_seg"].shape == (10, 100, 140)
    with torch.no_grad():  # extreme sizes: the batch is padded to 32 (the Swin's divisibility)
        shapes = [(1, 1), (1, 300), (300, 1), (33, 65)]
        out = model([{"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8)} for h, w in shapes])
    assert [tuple(o["sem_seg"].shape) for o in out] == [(10, h, w) for h, w in shapes]
    assert all(torch.isfinite(o["sem_seg"]).all() for o in out)
    # the release's optimizer groups: no decay on LayerNorms and position tables, decay elsewhere
    groups = build_optimizer(cfg, model).param_groups
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert decay[id(model.backbone.norm0.weight)] == 0.0
    assert decay[id(model.backbone.layers[0].blocks[0].attn.relative_position_bias_table)] == 0.0
    assert decay[id(model.backbone.layers[0].semantic_layer.norm1.bias)] == 0.0
    assert decay[id(model.sem_seg_head.scale_heads[0][0].norm.weight)] == cfg.SOLVER.WEIGHT_DECAY  # head's "bn"
    assert decay[id(model.sem_seg_head.predictor.bias)] == cfg.SOLVER.WEIGHT_DECAY
    assert decay[id(model.backbone.layers[0].blocks[0].attn.qkv.weight)] == cfg.SOLVER.WEIGHT_DECAY
    assert {g["lr"] for g in groups} == {cfg.SOLVER.BASE_LR}


def test_ohem_min_kept_comes_from_the_config_and_zero_turns_it_off():
    path = f"{CONFIGS}/quickstart/semask_fpn_swin_quickstart.yaml"
    args = BranchFPNHead.from_config(setup_cfg(path, ["MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT", "1000"]), SHAPES)
    assert args["ohem_min_kept"] == 1000
    assert BranchFPNHead.from_config(setup_cfg(path, []), SHAPES)["ohem_min_kept"] is None
    with pytest.raises(ValueError, match="OHEM_MIN_KEPT"):
        BranchFPNHead.from_config(setup_cfg(path, ["MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT", "-1"]), SHAPES)
