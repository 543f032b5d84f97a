"""Mask2Former video instance segmentation config keys (the original ``add_maskformer2_video_config``,
``mask2former_video/config.py`` of facebookresearch/Mask2Former 9b0651c), names and defaults unchanged.

The video family extends Mask2Former (:func:`mask2former.add_maskformer2_config`): every
Mask2Former and MaskFormer key (the ``MODEL.MASK_FORMER.TEST`` switches and thresholds included)
is there, and the video family adds the keys of the clip sampler and of the clip augmentations,
each only when missing (:func:`segcore.config.add_config_defaults`). The clip-aware values of
existing keys (``INPUT.MIN_SIZE_TRAIN_SAMPLING: choice_by_clip``, ``INPUT.RANDOM_FLIP:
flip_by_clip``) are set by the YouTube-VIS config files, as in the original, and read by the clip
mapper (:class:`mask2former_video.data.YTVISDatasetMapper`).
"""
from segcore.config import CfgNode as CN
from segcore.config import ModelFamily, add_config_defaults

from mask2former.config import add_maskformer2_config

__all__ = ["FAMILY", "VIDEO_DEFAULTS", "add_maskformer2_video_config"]

#: The keys the video family adds (Cheng et al., "Mask2Former for Video Instance Segmentation",
#: arXiv 2112.10764, Sec. 4: clips of 2 frames in training; the original ``add_maskformer2_video_config``).
VIDEO_DEFAULTS = {
    # training clips: SAMPLING_FRAME_NUM frames, the reference frame and others drawn within
    # SAMPLING_FRAME_RANGE frames of it, in time order unless SAMPLING_FRAME_SHUFFLE
    "INPUT.SAMPLING_FRAME_NUM": 2,
    "INPUT.SAMPLING_FRAME_RANGE": 20,
    "INPUT.SAMPLING_FRAME_SHUFFLE": False,
    # per-frame photometric / geometric augmentations of the training clips, any of
    # "brightness", "contrast", "saturation", "rotation" (the original's names)
    "INPUT.AUGMENTATIONS": [],
}


def add_maskformer2_video_config(cfg: CN) -> None:
    """Add the keys of MaskFormer, Mask2Former and the video family (:data:`VIDEO_DEFAULTS`) that
    ``cfg`` does not have yet, in place (idempotent; existing keys keep their values)."""
    add_maskformer2_config(cfg)
    add_config_defaults(cfg, VIDEO_DEFAULTS)


#: The entry point of the family (``setup.py``: ``segcore.model_families``).
FAMILY = ModelFamily(name="mask2former_video", add_config=add_maskformer2_video_config, extends=("mask2former",))
