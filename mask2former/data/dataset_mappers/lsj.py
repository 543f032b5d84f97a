"""Large-scale jitter (LSJ): the augmentation and the set-up shared by Mask2Former's LSJ mappers.

Mask2Former (Cheng et al., CVPR 2022, Sec. 4.1 and Appendix A.1) trains its COCO models with
large-scale jitter (Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for
Instance Segmentation", CVPR 2021, Sec. 3): an optional random flip, a resize by a random scale
in ``[INPUT.MIN_SCALE, INPUT.MAX_SCALE]`` of an ``INPUT.IMAGE_SIZE`` square, then a random crop
padded to exactly ``INPUT.IMAGE_SIZE`` x ``INPUT.IMAGE_SIZE`` pixels. The originals build this
list in ``build_transform_gen`` of ``coco_{instance,panoptic}_new_baseline_dataset_mapper.py``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mask_former.data.dataset_mappers.base import (
    IMAGE_PAD_VALUE,
    MaskFormerMapperBase,
    apply_augmentations,
    num_classes_from_config,
)
from segcore.config import configurable
from segcore.data import transforms as T

__all__ = ["RANDOM_FLIP_CHOICES", "LSJMapperBase", "build_lsj_augmentation", "lsj_padding_mask"]

#: the values of ``INPUT.RANDOM_FLIP``
RANDOM_FLIP_CHOICES = ("none", "horizontal", "vertical")


def build_lsj_augmentation(
    *, image_size: int, min_scale: float, max_scale: float, random_flip: str = "horizontal"
) -> List[T.Augmentation]:
    """The LSJ augmentations, in the original's order: flip, resize by a random scale, crop and pad.

    Args:
        image_size: the output height and width in pixels (``INPUT.IMAGE_SIZE``, 1024 for COCO).
        min_scale, max_scale: the range the resize scale is drawn from (uniformly, with
            ``numpy.random``), as a fraction of ``image_size`` (``INPUT.MIN_SCALE`` /
            ``INPUT.MAX_SCALE``, 0.1 and 2.0); 0 < min_scale <= max_scale.
        random_flip: ``INPUT.RANDOM_FLIP``: "horizontal" or "vertical" adds a
            :class:`~segcore.data.transforms.RandomFlip` (probability 0.5) in that direction
            first; "none" adds none.

    Returns:
        ``[RandomFlip (unless "none"), ResizeScale(min_scale, max_scale, image_size, image_size),
        FixedSizeCrop((image_size, image_size))]``. The crop pads the image (bottom and right)
        with :data:`~mask_former.data.dataset_mappers.base.IMAGE_PAD_VALUE` (128) and label maps
        with 255.

    Raises:
        ValueError: an unknown ``random_flip``, a non-positive ``image_size``, or a scale range
            that is not 0 < min_scale <= max_scale.
    """
    if random_flip not in RANDOM_FLIP_CHOICES:
        raise ValueError(f"INPUT.RANDOM_FLIP must be one of {RANDOM_FLIP_CHOICES}; got '{random_flip}'")
    if int(image_size) != image_size or image_size <= 0:
        raise ValueError(f"INPUT.IMAGE_SIZE must be a positive number of pixels; got {image_size}")
    image_size = int(image_size)
    augmentation: List[T.Augmentation] = []
    if random_flip != "none":
        augmentation.append(T.RandomFlip(horizontal=random_flip == "horizontal", vertical=random_flip == "vertical"))
    augmentation.append(
        T.ResizeScale(min_scale=min_scale, max_scale=max_scale, target_height=image_size, target_width=image_size)
    )
    augmentation.append(T.FixedSizeCrop(crop_size=(image_size, image_size), pad_value=float(IMAGE_PAD_VALUE)))
    return augmentation


def lsj_padding_mask(transforms: T.TransformList, image_shape: Tuple[int, int]) -> torch.Tensor:
    """Which output pixels are padding, found by sending an all-ones label map through ``transforms``.

    The original mappers cast the transformed map to bool, which relied on a padding value of 0;
    label maps are padded with 255 here (``FixedSizeCrop``'s ``seg_pad_value``), so a pixel is
    image exactly when it is still 1.

    Args:
        transforms: the transforms applied to the image.
        image_shape: (H, W) of the image before the transforms, in pixels.

    Returns:
        (H', W') bool tensor of the transformed size, True where the pixel is padding.
    """
    ones = np.ones(tuple(int(s) for s in image_shape), dtype=np.uint8)
    return torch.from_numpy(np.ascontiguousarray(transforms.apply_segmentation(ones) != 1))


class LSJMapperBase(MaskFormerMapperBase):
    """The base of the LSJ training mappers (``coco_instance_lsj``, ``coco_panoptic_lsj``).

    Args:
        is_train: must be True when called (LSJ is a training augmentation, as in the original).
        augmentations: augmentations or fixed transforms, applied in order
            (:func:`build_lsj_augmentation` from a config).
        image_format: "RGB" or "BGR" (``INPUT.FORMAT``).
        num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``): a segment's or annotation's
            "category_id" outside [0, K) is an error naming the file (see
            :meth:`~mask_former.data.dataset_mappers.base.MaskFormerMapperBase.check_category_ids`);
            None checks nothing.

    Unlike the MaskFormer mappers, nothing is padded after the augmentations
    (``size_divisibility`` is -1): ``FixedSizeCrop`` already pads to the output size.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        augmentations: Sequence[Union[T.Augmentation, T.Transform]],
        image_format: str,
        num_classes: Optional[int] = None,
    ):
        super().__init__(is_train, augmentations=augmentations, image_format=image_format, size_divisibility=-1,
                         num_classes=num_classes)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        """Augmentations: :func:`build_lsj_augmentation` (INPUT.IMAGE_SIZE, INPUT.MIN_SCALE,
        INPUT.MAX_SCALE, INPUT.RANDOM_FLIP); image format INPUT.FORMAT; ``num_classes``
        MODEL.SEM_SEG_HEAD.NUM_CLASSES.

        Raises:
            ValueError: ``is_train`` is False (LSJ has no inference augmentation), or the
                config values are invalid (see :func:`build_lsj_augmentation`).
        """
        if not is_train:
            raise ValueError(f"{cls.__name__} (large-scale jitter) is for training only; got is_train=False")
        return {
            "is_train": is_train,
            "augmentations": build_lsj_augmentation(
                image_size=cfg.INPUT.IMAGE_SIZE,
                min_scale=cfg.INPUT.MIN_SCALE,
                max_scale=cfg.INPUT.MAX_SCALE,
                random_flip=cfg.INPUT.RANDOM_FLIP,
            ),
            "image_format": cfg.INPUT.FORMAT,
            "num_classes": num_classes_from_config(cfg),
        }

    def augment(self, image: np.ndarray,
                file_name: str = "<unknown file>") -> Tuple[np.ndarray, T.TransformList, torch.Tensor]:
        """Apply the augmentations to an (H, W, C) uint8 image.

        Args:
            image: the image read from ``file_name``.
            file_name: the image file, named in errors.

        Returns:
            (augmented (H', W', C) image, the transforms applied, (H', W') bool padding mask
            (True on padding, see :func:`lsj_padding_mask`)).

        Raises:
            ValueError: an augmentation cannot handle the image (the message names the file).
        """
        aug_input, transforms = apply_augmentations(self.tfm_gens, T.AugInput(image), file_name)
        return aug_input.image, transforms, lsj_padding_mask(transforms, image.shape[:2])

    @staticmethod
    def image_to_tensor(image: np.ndarray) -> torch.Tensor:
        """(H, W, C) uint8 array -> (C, H, W) uint8 tensor (contiguous)."""
        return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
