"""The SeMask-FPN configs resolve to the release's values for the keys that decide the model and its
training (a table written from Picsart-AI-Research/SeMask-Segmentation 16539be, SeMask-FPN/configs/).

Where each column comes from, per released file ``configs/semask_swin/<dataset>/semfpn_*.py``:
``model.backbone`` (embed_dim, depths, num_heads, window_size, sem_window_size, num_cls,
drop_path_rate, num_sem_blocks [1, 1, 1, 1]), ``model.decode_head`` (num_classes, cate_w, sampler),
``optimizer`` (lr, weight_decay), ``lr_config`` (warmup_ratio; warmup_iters 1500, power 1.0, min_lr 0
in every file), ``data.samples_per_gpu`` x the GPUs of the release README (ADE20K: 2 GPUs, Swin-L 4;
Cityscapes: 2 GPUs, Swin-L 4), and the dataset file of ``_base_`` (crop_size, img_scale,
ratio_range, cat_max_ratio). ``_base_/models/semfpn_semask_swin.py`` gives what all share: channels
256, SyncBN, dropout 0.1, in_index [0, 1, 2, 3], align_corners False; ``schedule_80k.py`` 80000
iterations, checkpoints and evaluation every 8000.
"""
import os

import pytest

from segcore.engine import setup_cfg
from tests.configs.test_configs_build import build_uninitialized
from tests.paths import CONFIGS

ADE = "ade20k-150/semask_fpn/"
CITY = "cityscapes-19/semask_fpn/"
T = dict(embed=96, depths=[2, 2, 6, 2], heads=[3, 6, 12, 24], window=7)
S = dict(embed=96, depths=[2, 2, 18, 2], heads=[3, 6, 12, 24], window=7)
B = dict(embed=128, depths=[2, 2, 18, 2], heads=[4, 8, 16, 32], window=12)
L = dict(embed=192, depths=[2, 2, 18, 2], heads=[6, 12, 24, 48], window=12)
ADE_RATIOS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # ratio_range as a list: one ratio chosen per image

#: our file -> (released file, backbone, classes, lr, weight decay, warmup ratio, images per batch,
#: crop side, img_scale short side, cat_max_ratio, windowed Semantic-Layer stages, OHEM min_kept)
RELEASED = {
    ADE + "semfpn_semask_swin_tiny_bs16_80k.yaml": (
        "ade20k/semfpn_semask_swin_tiny_patch4_window7_512x512_80k_ade20k.py", T, 150, 1e-4, 1e-4, 1e-6, 2 * 8,
        512, 512, 0.75, [0, 1], None),
    ADE + "semfpn_semask_swin_small_bs16_80k.yaml": (
        "ade20k/semfpn_semask_swin_small_patch4_window7_512x512_80k_ade20k.py", S, 150, 1e-4, 1e-4, 1e-6, 2 * 8,
        512, 512, 1.0, [0, 1], None),
    ADE + "semfpn_semask_swin_base_IN21k_384_bs16_80k.yaml": (
        "ade20k/semfpn_semask_swin_base_patch4_window12_512x512_80k_ade20k.py", B, 150, 1e-4, 1e-4, 1e-6, 2 * 8,
        512, 512, 1.0, [0, 1, 2, 3], None),
    ADE + "semfpn_semask_swin_large_IN21k_384_bs16_80k_res640.yaml": (
        "ade20k/semfpn_semask_swin_large_patch4_window12_640x640_80k_ade20k.py", L, 150, 1e-4, 1e-4, 1e-6, 4 * 4,
        640, 640, 1.0, [0, 1], 100000),
    CITY + "semfpn_semask_swin_tiny_bs8_80k.yaml": (
        "cityscapes/semfpn_semask_swin_tiny_patch4_window7_768x768_80k_cityscapes.py", T, 19, 1e-3, 0.05, 1e-5, 2 * 4,
        768, 1024, 0.75, [0, 1, 2, 3], None),
    CITY + "semfpn_semask_swin_small_bs8_80k.yaml": (
        "cityscapes/semfpn_semask_swin_small_patch4_window7_768x768_80k_cityscapes.py", S, 19, 1e-3, 0.05, 1e-5, 2 * 4,
        768, 1024, 0.75, [0, 1, 2, 3], None),
    CITY + "semfpn_semask_swin_base_IN21k_384_bs8_80k.yaml": (
        "cityscapes/semfpn_semask_swin_base_patch4_window12_768x768_80k_cityscapes.py", B, 19, 1e-3, 0.05, 1e-6, 2 * 4,
        768, 1024, 0.75, [0, 1, 2, 3], None),
    CITY + "semfpn_semask_swin_large_IN21k_384_bs8_80k.yaml": (
        "cityscapes/semfpn_semask_swin_large_patch4_window12_768x768_80k_cityscapes.py", L, 19, 1e-3, 0.05, 1e-5, 4 * 2,
        768, 1024, 0.75, [0, 1, 2, 3], None),
}


def test_every_semask_fpn_config_is_in_the_table():
    found = sorted(f"{folder}{f}" for folder in (ADE, CITY) for f in os.listdir(os.path.join(CONFIGS, folder))
                   if f.startswith("semfpn_"))
    assert found == sorted(RELEASED)


@pytest.mark.parametrize("rel_path", sorted(RELEASED))
def test_config_values_equal_the_release(rel_path):
    _, arch, classes, lr, wd, warmup_ratio, batch, crop, short, cat_max, windowed, ohem = RELEASED[rel_path]
    cfg = setup_cfg(os.path.join(CONFIGS, rel_path), ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    m, s, i = cfg.MODEL, cfg.SOLVER, cfg.INPUT
    assert (m.META_ARCHITECTURE, m.BACKBONE.NAME, m.SEM_SEG_HEAD.NAME) == \
        ("SemanticSegmentor", "SeMaskSwinTransformer", "BranchFPNHead")
    assert (m.SWIN.EMBED_DIM, list(m.SWIN.DEPTHS), list(m.SWIN.NUM_HEADS), m.SWIN.WINDOW_SIZE, m.SWIN.SEM_WINDOW_SIZE) \
        == (arch["embed"], arch["depths"], arch["heads"], arch["window"], arch["window"])
    assert (m.SWIN.NUM_SEM_BLOCKS, m.SWIN.DROP_PATH_RATE, m.SWIN.APE, m.SWIN.PATCH_NORM, m.SWIN.MLP_RATIO) == \
        (1, 0.3, False, True, 4.0)
    assert list(m.SWIN.OUT_FEATURES) == list(m.SEM_SEG_HEAD.IN_FEATURES) == ["res2", "res3", "res4", "res5"]
    assert (m.SEM_SEG_HEAD.NUM_CLASSES, m.SEM_SEG_HEAD.CONVS_DIM, m.SEM_SEG_HEAD.COMMON_STRIDE, m.SEM_SEG_HEAD.NORM,
            m.SEM_SEG_HEAD.IGNORE_VALUE, m.SEM_SEG_HEAD.LOSS_WEIGHT, m.MASK_FORMER.CATE_WEIGHT) == \
        (classes, 256, 4, "SyncBN", 255, 1.0, 0.4)
    assert (s.OPTIMIZER, s.BASE_LR, s.WEIGHT_DECAY, s.WEIGHT_DECAY_NORM, s.BACKBONE_MULTIPLIER) == \
        ("ADAMW", lr, wd, 0.0, 1.0)
    assert (s.LR_SCHEDULER_NAME, s.POLY_LR_POWER, s.POLY_LR_CONSTANT_ENDING, s.WARMUP_METHOD, s.WARMUP_ITERS,
            s.WARMUP_FACTOR) == ("WarmupPolyLR", 1.0, 0.0, "linear", 1500, warmup_ratio)
    assert (s.MAX_ITER, s.IMS_PER_BATCH, s.CHECKPOINT_PERIOD, cfg.TEST.EVAL_PERIOD, s.CLIP_GRADIENTS.ENABLED) == \
        (80000, batch, 8000, 8000, False)
    assert (tuple(i.CROP.SIZE), i.CROP.TYPE, i.CROP.SINGLE_CATEGORY_MAX_AREA, i.SIZE_DIVISIBILITY) == \
        ((crop, crop), "absolute", cat_max, crop)
    img_scale_long = {150: 4 * short, 19: 2 * short}[classes]  # img_scale (2048, 512), (2560, 640), (2048, 1024)
    assert (i.FORMAT, i.COLOR_AUG_SSD, i.MIN_SIZE_TEST, i.MAX_SIZE_TEST) == ("RGB", True, short, img_scale_long)
    if classes == 150:  # img_scale (4 x short, short) x one of the listed ratios
        assert (i.MIN_SIZE_TRAIN_SAMPLING, list(i.MIN_SIZE_TRAIN)) == ("choice", [int(r * short) for r in ADE_RATIOS])
        assert i.MAX_SIZE_TRAIN == int(img_scale_long * max(ADE_RATIOS))
    else:  # img_scale (2048, 1024) x a ratio drawn from (0.5, 2.0)
        assert (i.MIN_SIZE_TRAIN_SAMPLING, list(i.MIN_SIZE_TRAIN), i.MAX_SIZE_TRAIN) == ("range", [512, 2048], 4096)
    assert list(m.PIXEL_MEAN) == [123.675, 116.28, 103.53] and list(m.PIXEL_STD) == [58.395, 57.12, 57.375]

    model = build_uninitialized(cfg)
    windows = [layer.semantic_layer.window_size for layer in model.backbone.layers]
    assert [k for k, w in enumerate(windows) if w is not None] == windowed
    assert set(windows) - {None} == {arch["window"]}
    head = model.sem_seg_head
    assert head.dropout.p == 0.1 and head.cate_weight == 0.4
    # the head as the release builds it, OHEM included (MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT)
    assert head.ohem_min_kept == ohem
