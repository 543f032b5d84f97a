"""mask2former.convert.hf_config: our configs as Hugging Face configs and image processors."""
import os

import pytest

from segcore.engine import setup_cfg
from tests.paths import CONFIGS

transformers = pytest.importorskip("transformers")

from mask2former.convert import (  # noqa: E402
    UnsupportedModelError,
    backbone_for_cfg,
    hf_config_from_cfg,
    hf_image_processor,
    hf_maskformer_config_from_cfg,
)
from mask2former.convert.hf_config import pixel_normalization  # noqa: E402

M2F_R50 = os.path.join(CONFIGS, "coco", "panoptic-segmentation", "maskformer2_R50_bs16_50ep.yaml")
MASKFORMER = os.path.join(CONFIGS, "quickstart", "maskformer_R18_quickstart.yaml")


def test_mask2former_r50():
    cfg = setup_cfg(M2F_R50)
    config = hf_config_from_cfg(cfg)
    assert config.backbone_config.model_type == "resnet" and config.backbone_config.depths == [3, 4, 6, 3]
    assert config.num_queries == cfg.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES and config.decoder_layers == 10
    assert config.num_labels == cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    assert backbone_for_cfg(cfg).hf_model_type == "resnet"


def test_maskformer_quickstart():
    cfg = setup_cfg(MASKFORMER, ["MODEL.MASK_FORMER.DEC_LAYERS", "2"])
    config = hf_maskformer_config_from_cfg(cfg)
    assert config.decoder_config.decoder_layers == 2 and config.decoder_config.encoder_layers == 0
    assert config.backbone_config.depths == [2, 2, 2, 2] and config.num_labels == cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    with pytest.raises(UnsupportedModelError, match="ENC_LAYERS=1"):
        hf_maskformer_config_from_cfg(setup_cfg(MASKFORMER, ["MODEL.MASK_FORMER.ENC_LAYERS", "1"]))
    with pytest.raises(UnsupportedModelError, match="MODEL.BACKBONE.NAME='build_resnet_deeplab_backbone'"):
        backbone_for_cfg(setup_cfg(MASKFORMER, ["MODEL.BACKBONE.NAME", "build_resnet_deeplab_backbone"]))


def test_image_processor_reads_rgb_with_our_normalization():
    cfg = setup_cfg(M2F_R50, ["INPUT.FORMAT", "BGR", "MODEL.PIXEL_MEAN", "[1.0, 2.0, 3.0]", "INPUT.MIN_SIZE_TEST", "0"])
    processor = hf_image_processor(cfg)
    assert processor.image_mean == pytest.approx([3 / 255, 2 / 255, 1 / 255])  # BGR -> RGB
    assert processor.do_resize is False and processor.size_divisor == 32
    maskformer = hf_image_processor(setup_cfg(MASKFORMER), maskformer=True)
    assert type(maskformer).__name__.startswith("MaskFormerImageProcessor") and maskformer.do_resize


def test_pixel_normalization():
    notes = []
    keys = pixel_normalization({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "size": {}}, notes)
    assert keys == {"MODEL.PIXEL_MEAN": [127.5] * 3, "MODEL.PIXEL_STD": [63.75] * 3, "INPUT.FORMAT": "RGB"}
    assert len(notes) == 1 and "resizes" in notes[0]
    with pytest.raises(UnsupportedModelError, match="do_normalize=False"):
        pixel_normalization({"do_normalize": False}, [])
