"""Our Mask2Former configs resolve, key by key, to the values of the original release.

The released values (facebookresearch/Mask2Former 9b0651c on detectron2 02b5c4e, resolved with
the original's own defaults: Detectron2's, ``add_deeplab_config``, ``add_maskformer2_config``) are
in ``tests/fixtures/mask2former_original_configs.json``, written by
``tools/dev/compare_configs_with_original.py --family mask2former --write-fixture`` (see
``tests/fixtures/README.md``). Here only ours are resolved, as ``train_net.py`` does
(``setup_cfg``); no model is built (``test_configs_build.py`` builds them).
"""
import os

import pytest

from segcore.engine import setup_cfg
from tests.configs.released import (MASK2FORMER_FIXTURE, MASKFORMER_FIXTURE, differences_from_release, fixture_of,
                                    load_release, our_configs_in_release_folders, released_configs,
                                    released_values)
from tests.paths import CONFIGS

RELEASED = released_configs(MASK2FORMER_FIXTURE)

# Keys that decide the architecture, the weights, the losses, inference, the data pipeline and the
# schedule: every released config must carry them in the fixture (a regenerated fixture that lost
# them would test nothing).
REQUIRED_KEYS = [
    "MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.NAME", "MODEL.BACKBONE.FREEZE_AT", "MODEL.WEIGHTS",
    "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD",
    "MODEL.RESNETS.DEPTH", "MODEL.RESNETS.NORM", "MODEL.RESNETS.STEM_TYPE", "MODEL.RESNETS.STRIDE_IN_1X1",
    "MODEL.RESNETS.OUT_FEATURES", "MODEL.RESNETS.RES5_MULTI_GRID",
    "MODEL.SWIN.EMBED_DIM", "MODEL.SWIN.DEPTHS", "MODEL.SWIN.NUM_HEADS", "MODEL.SWIN.WINDOW_SIZE",
    "MODEL.SWIN.PRETRAIN_IMG_SIZE", "MODEL.SWIN.APE", "MODEL.SWIN.DROP_PATH_RATE",
    "MODEL.SEM_SEG_HEAD.NAME", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.SEM_SEG_HEAD.IGNORE_VALUE",
    "MODEL.SEM_SEG_HEAD.IN_FEATURES", "MODEL.SEM_SEG_HEAD.COMMON_STRIDE", "MODEL.SEM_SEG_HEAD.CONVS_DIM",
    "MODEL.SEM_SEG_HEAD.MASK_DIM", "MODEL.SEM_SEG_HEAD.NORM", "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME",
    "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES",
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS",
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS",
    "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME", "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE",
    "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "MODEL.MASK_FORMER.HIDDEN_DIM", "MODEL.MASK_FORMER.NHEADS",
    "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "MODEL.MASK_FORMER.DEC_LAYERS", "MODEL.MASK_FORMER.PRE_NORM",
    "MODEL.MASK_FORMER.DROPOUT", "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ", "MODEL.MASK_FORMER.SIZE_DIVISIBILITY",
    "MODEL.MASK_FORMER.CLASS_WEIGHT", "MODEL.MASK_FORMER.MASK_WEIGHT", "MODEL.MASK_FORMER.DICE_WEIGHT",
    "MODEL.MASK_FORMER.NO_OBJECT_WEIGHT", "MODEL.MASK_FORMER.DEEP_SUPERVISION",
    "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "MODEL.MASK_FORMER.OVERSAMPLE_RATIO",
    "MODEL.MASK_FORMER.IMPORTANCE_SAMPLE_RATIO",
    "MODEL.MASK_FORMER.TEST.SEMANTIC_ON", "MODEL.MASK_FORMER.TEST.INSTANCE_ON", "MODEL.MASK_FORMER.TEST.PANOPTIC_ON",
    "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD",
    "INPUT.MIN_SIZE_TRAIN", "INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TRAIN", "INPUT.MAX_SIZE_TEST", "INPUT.CROP.SIZE",
    "INPUT.FORMAT", "INPUT.SIZE_DIVISIBILITY", "INPUT.DATASET_MAPPER_NAME", "INPUT.COLOR_AUG_SSD",
    "INPUT.IMAGE_SIZE", "INPUT.MIN_SCALE", "INPUT.MAX_SCALE",
    "TEST.AUG.MIN_SIZES", "TEST.AUG.MAX_SIZE", "TEST.AUG.FLIP", "TEST.EVAL_PERIOD",
    "SOLVER.OPTIMIZER", "SOLVER.BASE_LR", "SOLVER.WEIGHT_DECAY", "SOLVER.BACKBONE_MULTIPLIER",
    "SOLVER.LR_SCHEDULER_NAME", "SOLVER.STEPS", "SOLVER.MAX_ITER", "SOLVER.WARMUP_ITERS", "SOLVER.IMS_PER_BATCH",
    "SOLVER.CLIP_GRADIENTS.ENABLED", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE",
    "SOLVER.AMP.ENABLED", "DATASETS.TRAIN", "DATASETS.TEST", "DATALOADER.NUM_WORKERS",
]

# The original's config folders without its video configs (youtubevis_*, another train_net).
FOLDERS = {"ade20k", "coco", "cityscapes", "mapillary-vistas"}


def test_the_released_configs_are_the_ones_here():
    assert len(RELEASED) == 57
    assert {rel.split("/")[0] for rel in RELEASED} == FOLDERS
    assert our_configs_in_release_folders(MASK2FORMER_FIXTURE) == RELEASED


def test_the_two_releases_have_separate_folders():
    """A config path names one release only (MaskFormer's ade20k-150/... vs Mask2Former's ade20k/...)."""
    maskformer = set(released_configs(MASKFORMER_FIXTURE))
    assert not {rel.split("/")[0] for rel in maskformer} & FOLDERS
    assert {fixture_of(rel) for rel in RELEASED} == {MASK2FORMER_FIXTURE}
    assert {fixture_of(rel) for rel in maskformer} == {MASKFORMER_FIXTURE}
    assert fixture_of("quickstart/maskformer_R18_quickstart.yaml") is None


def test_the_fixture_holds_the_architecture_and_inference_keys():
    release = load_release(MASK2FORMER_FIXTURE)
    assert release["original"]["repository"] == "facebookresearch/Mask2Former"
    assert release["original"]["revision"] == "9b0651c"
    assert release["original"]["config_functions"][-1].endswith(":add_maskformer2_config")
    missing = [k for k in REQUIRED_KEYS if k not in release["defaults"]]
    assert not missing, f"regenerate the fixture with these keys: {missing}"
    for rel in RELEASED:
        assert set(release["configs"][rel]) <= set(release["defaults"]), rel


@pytest.mark.parametrize("rel_path", RELEASED)
def test_config_resolves_to_the_released_values(rel_path):
    cfg = setup_cfg(os.path.join(CONFIGS, *rel_path.split("/")))
    differences = differences_from_release(rel_path, cfg, MASK2FORMER_FIXTURE)
    assert not differences, f"{rel_path} differs from the original release:\n  " + "\n  ".join(differences)


def test_the_base_files_name_the_decoder_of_the_original_defaults():
    """The original Base-*.yaml files name no transformer decoder and get Mask2Former's default;
    here, with MaskFormer installed too, the default is MaskFormer's, so ours name it."""
    assert load_release(MASK2FORMER_FIXTURE)["defaults"]["MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME"] == \
        "MultiScaleMaskedTransformerDecoder"
    bases = [rel for rel in RELEASED if os.path.basename(rel).startswith("Base-")]
    assert len(bases) == 10
    for rel in bases:
        cfg = setup_cfg(os.path.join(CONFIGS, *rel.split("/")))
        assert cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME == "MultiScaleMaskedTransformerDecoder", rel


def test_a_changed_value_is_reported(tmp_path):
    """The comparison catches one-key changes (a test threshold, the number of sampled points) and
    a key that our tree lacks."""
    rel = "coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml"
    changed = tmp_path / "changed.yaml"
    changed.write_text(f"_BASE_: {os.path.join(CONFIGS, *rel.split('/'))}\n"
                       "MODEL:\n  MASK_FORMER:\n    TRAIN_NUM_POINTS: 4096\n"
                       "    TEST:\n      OBJECT_MASK_THRESHOLD: 0.7\n")
    cfg = setup_cfg(str(changed), freeze=False)
    assert differences_from_release(rel, cfg, MASK2FORMER_FIXTURE) == [
        "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD: released 0.8, here 0.7",
        "MODEL.MASK_FORMER.TRAIN_NUM_POINTS: released 12544, here 4096"]
    del cfg.MODEL.SEM_SEG_HEAD["DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES"]
    assert ("MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES: released ['res3', 'res4', 'res5'], "
            "missing here") in differences_from_release(rel, cfg, MASK2FORMER_FIXTURE)


def test_a_swin_file_that_loses_its_queries_is_reported():
    """The Swin-L COCO model has 200 queries; its R50 base has 100 (a value only the Swin file sets)."""
    rel = "coco/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_100ep.yaml"
    base = "coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml"
    cfg = setup_cfg(os.path.join(CONFIGS, *base.split("/")))
    differences = differences_from_release(rel, cfg, MASK2FORMER_FIXTURE)
    assert "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES: released 200, here 100" in differences
    assert "SOLVER.MAX_ITER: released 737500, here 368750" in differences


def test_accepted_differences_are_left_out_only_where_listed():
    accepted = load_release(MASK2FORMER_FIXTURE)["accepted_differences"]
    assert set(accepted) == {"MODEL.META_ARCHITECTURE"}
    for key, entry in accepted.items():
        assert entry["reason"]
        for rel in RELEASED:
            assert (key in released_values(rel, MASK2FORMER_FIXTURE)) == (rel not in entry["configs"]), (key, rel)
