"""Mask2Former config keys (the original ``add_maskformer2_config``), names and defaults unchanged.

Mask2Former extends MaskFormer: :func:`add_maskformer2_config` first adds MaskFormer's keys
(:func:`mask_former.add_mask_former_config`), then the keys Mask2Former introduces, each only
when missing (:func:`segcore.config.add_config_defaults`). Where the two originals give the same
key different defaults, MaskFormer's stays, so a MaskFormer config builds MaskFormer's model; the
Mask2Former config files name what differs (e.g. ``TRANSFORMER_DECODER_NAME:
MultiScaleMaskedTransformerDecoder``, ``PIXEL_DECODER_NAME: MSDeformAttnPixelDecoder``).
"""
from segcore.config import CfgNode as CN
from segcore.config import ModelFamily, add_config_defaults

from mask_former.config import add_mask_former_config

__all__ = ["FAMILY", "MASK2FORMER_DEFAULTS", "add_maskformer2_config"]

#: The keys Mask2Former adds to MaskFormer's (Cheng et al., CVPR 2022; the original ``mask2former/config.py``).
MASK2FORMER_DEFAULTS = {
    # the transformer decoder (the original's default; MaskFormer's "StandardTransformerDecoder"
    # stays the default when both families are installed: the Mask2Former configs name theirs)
    "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": "MultiScaleMaskedTransformerDecoder",
    # large-scale jitter (the LSJ mappers): output size (pixels) and the scale range
    "INPUT.IMAGE_SIZE": 1024,
    "INPUT.MIN_SCALE": 0.1,
    "INPUT.MAX_SCALE": 2.0,
    # the multi-scale deformable-attention pixel decoder (Sec. 4.1): the backbone features its
    # encoder reads, sampling points per head and level, attention heads, and the width (channels)
    # of its feed-forward layers (1024, a constant in the original code)
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES": ["res3", "res4", "res5"],
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": 4,
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": 8,
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD": 1024,
    # point-sampled matching and mask losses (Sec. 3.3): K points per mask (112 x 112), PointRend's
    # oversampling k and importance-sampling ratio beta
    "MODEL.MASK_FORMER.TRAIN_NUM_POINTS": 112 * 112,
    "MODEL.MASK_FORMER.OVERSAMPLE_RATIO": 3.0,
    "MODEL.MASK_FORMER.IMPORTANCE_SAMPLE_RATIO": 0.75,
}


def add_maskformer2_config(cfg: CN) -> None:
    """Add the keys of MaskFormer and of Mask2Former (:data:`MASK2FORMER_DEFAULTS`) that ``cfg``
    does not have yet, in place (idempotent; existing keys keep their values)."""
    add_mask_former_config(cfg)
    add_config_defaults(cfg, MASK2FORMER_DEFAULTS)


#: The entry point of the family (``setup.py``: ``segcore.model_families``).
FAMILY = ModelFamily(name="mask2former", add_config=add_maskformer2_config, extends=("mask_former",))
