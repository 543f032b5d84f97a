"""MaskFormer and Mask2Former configs both name ``META_ARCHITECTURE: MaskFormer``; each builds the
model of its own paper (decoder, matcher, criterion, inference convention) from what its file
contains, in one installation."""
import os

import pytest

from segcore.engine import setup_cfg
from tests.configs.test_configs_build import build_uninitialized
from tests.paths import CONFIGS

MASKFORMER = ("TransformerPredictor", "SetCriterion", "HungarianMatcher", False, {"loss_ce": 1.0, "loss_mask": 20.0,
                                                                                  "loss_dice": 1.0})
MASK2FORMER = ("MultiScaleMaskedTransformerDecoder", "PointSampledSetCriterion", "PointSampledHungarianMatcher", True,
               {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0})


@pytest.mark.parametrize("rel_path,expected", [
    ("ade20k-150/maskformer_R50_bs16_160k.yaml", MASKFORMER),
    ("coco-panoptic/maskformer_panoptic_R50_bs64_554k.yaml", MASKFORMER),
    ("ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml", MASK2FORMER),
    ("coco/instance-segmentation/maskformer2_R50_bs16_50ep.yaml", MASK2FORMER),
])
def test_each_config_builds_the_model_of_its_paper(rel_path, expected):
    decoder, criterion, matcher, confident, weights = expected
    cfg = setup_cfg(os.path.join(CONFIGS, rel_path), ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    assert cfg.MODEL.META_ARCHITECTURE == "MaskFormer"
    model = build_uninitialized(cfg)
    assert type(model.sem_seg_head.predictor).__name__ == decoder
    assert type(model.criterion).__name__ == criterion and type(model.criterion.matcher).__name__ == matcher
    assert model.panoptic_mask_must_be_confident is confident
    assert {k: model.criterion.weight_dict[k] for k in weights} == weights
    last_aux = cfg.MODEL.MASK_FORMER.DEC_LAYERS - 2
    assert f"loss_dice_{last_aux}" in model.criterion.weight_dict
    assert f"loss_dice_{last_aux + 1}" not in model.criterion.weight_dict
    if criterion == "PointSampledSetCriterion":
        assert model.criterion.num_points == model.criterion.matcher.num_points == 112 * 112
        assert (model.criterion.oversample_ratio, model.criterion.importance_sample_ratio) == (3.0, 0.75)
        assert type(model.sem_seg_head.pixel_decoder).__name__ == "MSDeformAttnPixelDecoder"
