"""Our SeMask configs resolve, key by key, to the values of the original release.

The released values (Picsart-AI-Research/SeMask-Segmentation 16539be on detectron2 02b5c4e, each
sub-project resolved with its own defaults: Detectron2's, ``add_deeplab_config`` and
SeMask-MaskFormer's ``add_mask_former_config`` or SeMask-Mask2Former's ``add_maskformer2_config``)
are in ``tests/fixtures/semask_maskformer_original_configs.json`` and
``semask_mask2former_original_configs.json``, written by
``tools/dev/compare_configs_with_original.py --family semask_maskformer|semask_mask2former
--write-fixture`` (see ``tests/fixtures/README.md``). Only the ``semask_swin/`` folders are SeMask's;
the SeMask repository's copies of the MaskFormer and Mask2Former configs are not compared here.
Here only ours are resolved, as ``train_net.py`` does (``setup_cfg``); ``test_configs_build.py``
builds the models and checks them against the same values.
"""
import os

import pytest

from segcore.engine import setup_cfg
from tests.configs.released import (MASK2FORMER_FIXTURE, MASKFORMER_FIXTURE, SEMASK_MASK2FORMER_FIXTURE,
                                    SEMASK_MASKFORMER_FIXTURE, differences_from_release, fixture_of, load_release,
                                    our_configs_in_release_folders, release_folders, released_configs,
                                    released_values)
from tests.paths import CONFIGS

#: fixture -> (number of files, the sub-project's config function, its folders)
FIXTURES = {
    SEMASK_MASKFORMER_FIXTURE: (2, "SeMask-MaskFormer/mask_former/config.py:add_mask_former_config",
                                ["ade20k-150/semask_swin"]),
    SEMASK_MASK2FORMER_FIXTURE: (4, "SeMask-Mask2Former/mask2former/config.py:add_maskformer2_config",
                                 ["ade20k/semantic-segmentation/semask_swin",
                                  "cityscapes/semantic-segmentation/semask_swin"]),
}
RELEASED = [(fixture, rel) for fixture in FIXTURES for rel in released_configs(fixture)]

# Keys that decide the SeMask architecture, the weights, the losses and inference: every release
# fixture must carry them (a regenerated fixture that lost them would test nothing).
REQUIRED_KEYS = [
    "MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.NAME", "MODEL.WEIGHTS", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD",
    "MODEL.RESNETS.DEPTH", "MODEL.SWIN.EMBED_DIM", "MODEL.SWIN.DEPTHS", "MODEL.SWIN.NUM_HEADS",
    "MODEL.SWIN.WINDOW_SIZE", "MODEL.SWIN.PRETRAIN_IMG_SIZE", "MODEL.SWIN.DROP_PATH_RATE",
    "MODEL.SWIN.SEM_WINDOW_SIZE", "MODEL.SWIN.NUM_SEM_BLOCKS",
    "MODEL.SEM_SEG_HEAD.NAME", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.SEM_SEG_HEAD.IGNORE_VALUE",
    "MODEL.SEM_SEG_HEAD.IN_FEATURES", "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME", "MODEL.SEM_SEG_HEAD.CONVS_DIM",
    "MODEL.SEM_SEG_HEAD.MASK_DIM", "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES",
    "MODEL.MASK_FORMER.DEC_LAYERS", "MODEL.MASK_FORMER.CATE_WEIGHT", "MODEL.MASK_FORMER.MASK_WEIGHT",
    "MODEL.MASK_FORMER.DICE_WEIGHT", "MODEL.MASK_FORMER.NO_OBJECT_WEIGHT", "MODEL.MASK_FORMER.DEEP_SUPERVISION",
    "MODEL.MASK_FORMER.TEST.PANOPTIC_ON", "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD",
    "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD",
    "INPUT.MIN_SIZE_TRAIN", "INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TEST", "INPUT.CROP.SIZE", "INPUT.FORMAT",
    "INPUT.SIZE_DIVISIBILITY", "INPUT.DATASET_MAPPER_NAME", "TEST.AUG.MIN_SIZES", "SOLVER.BASE_LR",
    "SOLVER.MAX_ITER", "SOLVER.IMS_PER_BATCH", "DATASETS.TRAIN", "DATASETS.TEST",
]
MASK2FORMER_KEYS = ["MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME", "MODEL.MASK_FORMER.CLASS_WEIGHT",
                    "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "MODEL.MASK_FORMER.TEST.SEMANTIC_ON",
                    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES"]
MF_SWIN_L = "ade20k-150/semask_swin/maskformer_semask_swin_large_IN21k_384_bs16_160k_res640.yaml"
CITY_SWIN_L = "cityscapes/semantic-segmentation/semask_swin/maskformer2_semask_swin_large_IN21k_384_bs16_90k.yaml"


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_the_released_configs_are_the_ones_here(fixture):
    count, _, folders = FIXTURES[fixture]
    assert release_folders(fixture) == folders
    assert len(released_configs(fixture)) == count
    assert our_configs_in_release_folders(fixture) == released_configs(fixture)
    assert {fixture_of(rel) for rel in released_configs(fixture)} == {fixture}


def test_the_semask_folders_are_left_out_of_the_maskformer_and_mask2former_releases():
    for fixture in [MASKFORMER_FIXTURE, MASK2FORMER_FIXTURE]:
        assert not [rel for rel in our_configs_in_release_folders(fixture) if "/semask_swin/" in rel]
        assert not [rel for rel in released_configs(fixture) if "/semask_swin/" in rel]


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_the_fixture_holds_the_architecture_and_inference_keys(fixture):
    release = load_release(fixture)
    assert release["original"]["repository"] == "Picsart-AI-Research/SeMask-Segmentation"
    assert release["original"]["revision"] == "16539be"
    assert release["original"]["config_functions"][-1] == "original:" + FIXTURES[fixture][1]
    required = REQUIRED_KEYS + (MASK2FORMER_KEYS if fixture == SEMASK_MASK2FORMER_FIXTURE else [])
    missing = [k for k in required if k not in release["defaults"]]
    assert not missing, f"regenerate the fixture with these keys: {missing}"
    # the SeMask keys and their defaults, the same in both sub-projects
    assert {k: release["defaults"][k] for k in ["MODEL.MASK_FORMER.CATE_WEIGHT", "MODEL.SWIN.SEM_WINDOW_SIZE",
                                                 "MODEL.SWIN.NUM_SEM_BLOCKS"]} == \
        {"MODEL.MASK_FORMER.CATE_WEIGHT": 0.4, "MODEL.SWIN.SEM_WINDOW_SIZE": 7, "MODEL.SWIN.NUM_SEM_BLOCKS": 1}
    for rel in released_configs(fixture):
        assert set(release["configs"][rel]) <= set(release["defaults"]), rel
        values = released_values(rel, fixture)
        assert values["MODEL.META_ARCHITECTURE"] == "SeMaskMaskFormer"
        assert values["MODEL.SEM_SEG_HEAD.NAME"] == "BranchMaskFormerHead"
        swin = "_semask_swin_" in os.path.basename(rel)
        assert (values["MODEL.BACKBONE.NAME"] == "D2SeMaskSwinTransformer") == swin, rel


@pytest.mark.parametrize("fixture, rel_path", RELEASED, ids=[rel for _, rel in RELEASED])
def test_config_resolves_to_the_released_values(fixture, rel_path):
    cfg = setup_cfg(os.path.join(CONFIGS, *rel_path.split("/")))
    differences = differences_from_release(rel_path, cfg, fixture)
    assert not differences, f"{rel_path} differs from the original release:\n  " + "\n  ".join(differences)


def test_semantic_window_sizes_as_released():
    """12x12 Semantic-Layer windows in the ADE20K Swin-L models; the Cityscapes file sets none (7)."""
    assert released_values(MF_SWIN_L, SEMASK_MASKFORMER_FIXTURE)["MODEL.SWIN.SEM_WINDOW_SIZE"] == 12
    assert released_values(CITY_SWIN_L, SEMASK_MASK2FORMER_FIXTURE)["MODEL.SWIN.SEM_WINDOW_SIZE"] == 7
    assert released_values(CITY_SWIN_L, SEMASK_MASK2FORMER_FIXTURE)["MODEL.SWIN.WINDOW_SIZE"] == 12


def test_what_differs_from_the_plain_swin_model_is_reported():
    """The plain MaskFormer Swin-L config is reported against the SeMask release: the SeMask
    architecture names, the Semantic-Layer windows and SeMask's own training short sides."""
    plain_swin_l = "maskformer_swin_large_IN21k_384_bs16_160k_res640.yaml"
    plain = setup_cfg(os.path.join(CONFIGS, "ade20k-150", "swin", plain_swin_l))
    differences = differences_from_release(MF_SWIN_L, plain, SEMASK_MASKFORMER_FIXTURE)
    assert [line.split(":")[0] for line in differences] == [
        "INPUT.MIN_SIZE_TRAIN", "MODEL.BACKBONE.NAME", "MODEL.META_ARCHITECTURE", "MODEL.SEM_SEG_HEAD.NAME",
        "MODEL.SWIN.SEM_WINDOW_SIZE"]
    assert "INPUT.MIN_SIZE_TRAIN: released [160, 320, 480, 640, 800, 960, 1120]" in differences[0]


def test_a_changed_semask_value_is_reported(tmp_path):
    rel = "ade20k/semantic-segmentation/semask_swin/maskformer2_semask_swin_large_IN21k_384_bs16_160k_res640.yaml"
    changed = tmp_path / "changed.yaml"
    changed.write_text(f"_BASE_: {os.path.join(CONFIGS, *rel.split('/'))}\n"
                       "MODEL:\n  SWIN:\n    NUM_SEM_BLOCKS: 2\n  MASK_FORMER:\n    CATE_WEIGHT: 0.2\n")
    cfg = setup_cfg(str(changed), freeze=False)
    assert differences_from_release(rel, cfg, SEMASK_MASK2FORMER_FIXTURE) == [
        "MODEL.MASK_FORMER.CATE_WEIGHT: released 0.4, here 0.2",
        "MODEL.SWIN.NUM_SEM_BLOCKS: released 1, here 2"]
