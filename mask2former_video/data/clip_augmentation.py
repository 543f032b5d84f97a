"""Clip augmentations: the same resize and flip for every frame of a clip, the rest per frame.

The original (``mask2former_video/data_video/augmentation.py``) makes ``ResizeShortestEdge`` and
``RandomFlip`` draw a new size / flip only every SAMPLING_FRAME_NUM calls (a counter inside the
augmentation) when ``INPUT.MIN_SIZE_TRAIN_SAMPLING`` is ``"range_by_clip"`` / ``"choice_by_clip"``
and ``INPUT.RANDOM_FLIP`` is ``"flip_by_clip"``, so that the frames of a clip, mapped one after
another, share them. Here the mapper says where a clip starts (:meth:`ClipAugmentations.new_clip`)
and a "by clip" augmentation's transform, drawn for the clip's first frame, is applied to all
its frames: the same result, without a counter that a clip of another length would shift.

The training list, in the original's order: ``RandomCrop`` (``INPUT.CROP``, per frame, as the
original), ``ResizeShortestEdge`` (``INPUT.MIN_SIZE_TRAIN`` / ``MAX_SIZE_TRAIN``, per clip with a
``*_by_clip`` sampling), ``RandomFlip`` (``INPUT.RANDOM_FLIP``: "none", "horizontal", "vertical" or
"flip_by_clip" = horizontal, per clip), then the per-frame ``INPUT.AUGMENTATIONS`` in
:data:`FRAME_AUGMENTATIONS` order. Evaluation: ``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple


from segcore.data.transforms import (AugInput, Augmentation, RandomCrop, RandomFlip, ResizeShortestEdge, Transform,
                                     TransformList)

from .augmentation_impl import RandomBrightness, RandomContrast, RandomRotation, RandomSaturation

__all__ = ["ClipAugmentations", "FRAME_AUGMENTATIONS", "build_clip_augmentations"]

#: ``INPUT.AUGMENTATIONS`` names -> the per-frame augmentation they add (the original's settings)
FRAME_AUGMENTATIONS: Dict[str, Callable[[], Augmentation]] = {
    "brightness": lambda: RandomBrightness(0.9, 1.1),
    "contrast": lambda: RandomContrast(0.9, 1.1),
    "saturation": lambda: RandomSaturation(0.9, 1.1),
    "rotation": lambda: RandomRotation([-15, 15], expand=False, center=[(0.4, 0.4), (0.6, 0.6)], sample_style="range"),
}

#: ``INPUT.MIN_SIZE_TRAIN_SAMPLING`` -> (ResizeShortestEdge's sample_style, drawn once per clip)
RESIZE_SAMPLING = {"range": ("range", False), "choice": ("choice", False), "range_by_clip": ("range", True),
                   "choice_by_clip": ("choice", True)}
#: ``INPUT.RANDOM_FLIP`` -> (RandomFlip's arguments or None for no flip, drawn once per clip)
FLIP_MODES = {"none": (None, False), "horizontal": ({"horizontal": True, "vertical": False}, False),
              "vertical": ({"horizontal": False, "vertical": True}, False),
              "flip_by_clip": ({"horizontal": True, "vertical": False}, True)}


class ClipAugmentations:
    """Augmentations of the frames of a clip, each drawn per frame or once per clip.

    Args:
        augmentations: applied in order to every frame.
        per_clip: for each, True when its transform is drawn for the clip's first frame and reused
            for the others (the frames of a clip have the same size), False when drawn per frame.

    Use: ``transforms = clip_augs.new_clip()``, then for each frame ``tfm = transforms(aug_input)``
    (the frame is transformed in place, as ``AugmentationList``; returns the TransformList).

    Raises:
        ValueError: the two lists differ in length.
    """

    def __init__(self, augmentations: Sequence[Augmentation], per_clip: Sequence[bool]):
        if len(augmentations) != len(per_clip):
            raise ValueError(f"ClipAugmentations: {len(augmentations)} augmentations but {len(per_clip)} per_clip flags")
        self.augmentations = list(augmentations)
        self.per_clip = [bool(p) for p in per_clip]

    def new_clip(self) -> Callable[[AugInput], TransformList]:
        """A function that augments the frames of one clip in turn (see the class docstring)."""
        drawn: Dict[int, Tuple[Tuple[int, ...], Transform]] = {}

        def apply(aug_input: AugInput) -> TransformList:
            transforms = []
            for i, (aug, per_clip) in enumerate(zip(self.augmentations, self.per_clip)):
                shape = tuple(aug_input.image.shape[:2])
                if per_clip and i in drawn and drawn[i][0] == shape:
                    tfm = drawn[i][1]
                    aug_input.transform(tfm)
                else:
                    tfm = aug(aug_input)
                    if per_clip:
                        drawn[i] = (shape, tfm)
                transforms.append(tfm)
            return TransformList(transforms)

        return apply

    def __repr__(self) -> str:
        items = ", ".join(f"{a}{' (per clip)' if p else ''}" for a, p in zip(self.augmentations, self.per_clip))
        return f"ClipAugmentations([{items}])"


def build_clip_augmentations(cfg, is_train: bool) -> ClipAugmentations:
    """The clip augmentations of a config (see the module docstring).

    Raises:
        ValueError: an unknown ``INPUT.MIN_SIZE_TRAIN_SAMPLING``, ``INPUT.RANDOM_FLIP`` or
            ``INPUT.AUGMENTATIONS`` name (the message lists the known ones).
    """
    if not is_train:
        return ClipAugmentations([ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")],
                                 [False])
    augs: List[Augmentation] = []
    per_clip: List[bool] = []
    if cfg.INPUT.CROP.ENABLED:
        augs.append(RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
        per_clip.append(False)
    sampling = cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
    if sampling not in RESIZE_SAMPLING:
        raise ValueError(f"INPUT.MIN_SIZE_TRAIN_SAMPLING '{sampling}' is not one of {sorted(RESIZE_SAMPLING)}")
    style, resize_per_clip = RESIZE_SAMPLING[sampling]
    augs.append(ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, style))
    per_clip.append(resize_per_clip)
    flip = cfg.INPUT.RANDOM_FLIP
    if flip not in FLIP_MODES:
        raise ValueError(f"INPUT.RANDOM_FLIP '{flip}' is not one of {sorted(FLIP_MODES)}")
    flip_args, flip_per_clip = FLIP_MODES[flip]
    if flip_args is not None:
        augs.append(RandomFlip(**flip_args))
        per_clip.append(flip_per_clip)
    unknown = [name for name in cfg.INPUT.AUGMENTATIONS if name not in FRAME_AUGMENTATIONS]
    if unknown:
        raise ValueError(f"INPUT.AUGMENTATIONS {unknown} unknown; the names are {sorted(FRAME_AUGMENTATIONS)}")
    for name in FRAME_AUGMENTATIONS:  # the original's order, whatever the config's
        if name in cfg.INPUT.AUGMENTATIONS:
            augs.append(FRAME_AUGMENTATIONS[name]())
            per_clip.append(False)
    return ClipAugmentations(augs, per_clip)


