"""Our MaskFormer configs resolve, key by key, to the values of the original release.

The released values (facebookresearch/MaskFormer da3e60d on detectron2 02b5c4e, resolved with the
original's own defaults) are in ``tests/fixtures/maskformer_original_configs.json``, written by
``tools/dev/compare_configs_with_original.py --write-fixture`` (see ``tests/fixtures/README.md``).
Here only ours are resolved, as ``train_net.py`` does (``setup_cfg``); no model is built
(``test_configs_build.py`` builds every model and checks it against the same values).
"""
import os

import pytest

from segcore.engine import setup_cfg
from tests.configs.released import (differences_from_release, load_release, our_configs_in_release_folders,
                                    released_configs, released_values, same_value)
from tests.paths import CONFIGS

RELEASED = released_configs()

# Keys that decide the architecture, the weights and inference: every released config must
# carry them in the fixture (a regenerated fixture that lost them would test nothing).
REQUIRED_KEYS = [
    "MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.NAME", "MODEL.BACKBONE.FREEZE_AT", "MODEL.WEIGHTS",
    "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD",
    "MODEL.RESNETS.DEPTH", "MODEL.RESNETS.NORM", "MODEL.RESNETS.STEM_TYPE", "MODEL.RESNETS.STEM_OUT_CHANNELS",
    "MODEL.RESNETS.STRIDE_IN_1X1", "MODEL.RESNETS.RES5_MULTI_GRID", "MODEL.RESNETS.OUT_FEATURES",
    "MODEL.RESNETS.RES4_DILATION", "MODEL.RESNETS.RES5_DILATION",
    "MODEL.SWIN.EMBED_DIM", "MODEL.SWIN.DEPTHS", "MODEL.SWIN.NUM_HEADS", "MODEL.SWIN.WINDOW_SIZE",
    "MODEL.SWIN.PRETRAIN_IMG_SIZE", "MODEL.SWIN.APE",
    "MODEL.SEM_SEG_HEAD.NAME", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.SEM_SEG_HEAD.IGNORE_VALUE",
    "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS",
    "MODEL.SEM_SEG_HEAD.CONVS_DIM", "MODEL.SEM_SEG_HEAD.MASK_DIM", "MODEL.SEM_SEG_HEAD.NORM",
    "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE", "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ",
    "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "MODEL.MASK_FORMER.HIDDEN_DIM", "MODEL.MASK_FORMER.DEC_LAYERS",
    "MODEL.MASK_FORMER.SIZE_DIVISIBILITY", "MODEL.MASK_FORMER.TEST.PANOPTIC_ON",
    "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD",
    "MODEL.MASK_FORMER.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE",
    "INPUT.MIN_SIZE_TRAIN", "INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TEST", "INPUT.CROP.SIZE", "INPUT.FORMAT",
    "INPUT.SIZE_DIVISIBILITY", "INPUT.DATASET_MAPPER_NAME",
    "TEST.AUG.MIN_SIZES", "TEST.AUG.MAX_SIZE", "TEST.AUG.FLIP", "TEST.EVAL_PERIOD",
    "SOLVER.BASE_LR", "SOLVER.MAX_ITER", "SOLVER.IMS_PER_BATCH", "DATASETS.TRAIN", "DATASETS.TEST",
]


def test_the_released_configs_are_the_ones_here():
    """Our configs under the released top-level folders (quickstart/ and the other families' files,
    e.g. SeMask's ade20k-150/semask_swin/, left out) are the released ones."""
    assert len(RELEASED) == 36
    assert our_configs_in_release_folders() == RELEASED


def test_the_fixture_holds_the_architecture_and_inference_keys():
    release = load_release()
    assert release["original"]["repository"] == "facebookresearch/MaskFormer"
    missing = [k for k in REQUIRED_KEYS if k not in release["defaults"]]
    assert not missing, f"regenerate the fixture with these keys: {missing}"
    for rel in RELEASED:
        assert set(release["configs"][rel]) <= set(release["defaults"]), rel


@pytest.mark.parametrize("rel_path", RELEASED)
def test_config_resolves_to_the_released_values(rel_path):
    cfg = setup_cfg(os.path.join(CONFIGS, *rel_path.split("/")))
    differences = differences_from_release(rel_path, cfg)
    assert not differences, f"{rel_path} differs from the original release:\n  " + "\n  ".join(differences)


def test_a_changed_value_is_reported(tmp_path):
    """The comparison catches a one-key change (here the COCO panoptic mask threshold) and a key
    that our tree lacks."""
    rel = "coco-panoptic/maskformer_panoptic_R50_bs64_554k.yaml"
    changed = tmp_path / "changed.yaml"
    changed.write_text(f"_BASE_: {os.path.join(CONFIGS, *rel.split('/'))}\n"
                       "MODEL:\n  MASK_FORMER:\n    TEST:\n      OBJECT_MASK_THRESHOLD: 0.7\n")
    cfg = setup_cfg(str(changed), freeze=False)
    assert differences_from_release(rel, cfg) == [
        "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD: released 0.8, here 0.7"]
    del cfg.MODEL.MASK_FORMER.TEST["PANOPTIC_ON"]
    assert "MODEL.MASK_FORMER.TEST.PANOPTIC_ON: released True, missing here" in differences_from_release(rel, cfg)


def test_accepted_differences_are_left_out_only_where_listed():
    accepted = load_release()["accepted_differences"]
    for key, entry in accepted.items():
        assert entry["reason"]
        for rel in RELEASED:
            assert (key in released_values(rel)) == (rel not in entry["configs"]), (key, rel)


def test_same_value_is_strict_about_bools_and_lengths():
    assert same_value([1, 2], [1, 2]) and same_value(2, 2.0) and same_value(None, None)
    assert not same_value(True, 1) and not same_value(0, False)
    assert not same_value([1, 2], [1, 2, 3]) and not same_value("res5", "res4") and not same_value(None, 0)
