"""What the MaskFormer training mappers share: augmentations, image reading and fixed-size padding."""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.nn import functional as F

from segcore.config import configurable
from segcore.data import detection_utils as utils
from segcore.data import transforms as T

__all__ = ["IMAGE_PAD_VALUE", "MaskFormerMapperBase", "fixed_size_padding"]

#: pixel value of the image padding (mid-grey, before normalization), as in the original
IMAGE_PAD_VALUE = 128


def fixed_size_padding(image_size: Tuple[int, int], size: int, file_name: str = "<unknown file>") -> List[int]:
    """The ``torch.nn.functional.pad`` amounts that pad an (H, W) image to ``size`` x ``size``.

    MaskFormer's training mappers use ``INPUT.SIZE_DIVISIBILITY`` as a fixed size: the image and
    its targets are padded at the bottom and right to exactly that many pixels.

    Args:
        image_size: (H, W) of the augmented image in pixels.
        size: the padded height and width in pixels (> 0).
        file_name: the image file, named in the error message.

    Returns:
        [left, right, top, bottom] = [0, size - W, 0, size - H], for ``F.pad`` on (..., H, W).

    Raises:
        ValueError: the image is larger than ``size`` in either dimension.
    """
    h, w = int(image_size[0]), int(image_size[1])
    if h > size or w > size:
        raise ValueError(
            f"Image '{file_name}' is {h}x{w} pixels after augmentation, larger than INPUT.SIZE_DIVISIBILITY = "
            f"{size}, the size the mapper pads to; enable INPUT.CROP with a crop no larger than it"
        )
    return [0, size - w, 0, size - h]


class MaskFormerMapperBase:
    """The base of the MaskFormer training mappers (semantic, panoptic, instance).

    Args:
        is_train: must be True when called (the original mappers are for training only).
        augmentations: augmentations or fixed transforms, applied in order.
        image_format: "RGB" or "BGR" (``INPUT.FORMAT``), see :func:`segcore.data.detection_utils.read_image`.
        size_divisibility: pad images and targets to exactly this height and width in pixels
            (``INPUT.SIZE_DIVISIBILITY``); <= 0 disables padding.

    Subclasses provide ``from_config(cls, cfg, is_train)`` (the constructor is ``@configurable``).
    """

    @configurable
    def __init__(self, is_train: bool = True, *, augmentations: Sequence[Union[T.Augmentation, T.Transform]],
                 image_format: str, size_divisibility: int):
        self.is_train = is_train
        self.tfm_gens = list(augmentations)
        self.img_format = image_format
        self.size_divisibility = size_divisibility
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info("[%s] Augmentations used in %s: %s", type(self).__name__, mode,
                                         self.tfm_gens)

    def read_checked_image(self, dataset_dict: dict) -> np.ndarray:
        """Read ``dataset_dict["file_name"]`` in ``image_format`` and check it against the dict's size.

        Raises:
            RuntimeError: the mapper was built with ``is_train=False``.
            FileNotFoundError / ImageReadError / SizeMismatchError: see ``detection_utils``.
        """
        if not self.is_train:
            raise RuntimeError(f"{type(self).__name__} is for training only (built with is_train=False)")
        image = utils.read_image(dataset_dict["file_name"], format=self.img_format)
        utils.check_image_size(dataset_dict, image)
        return image

    def padding(self, image_size: Tuple[int, int], file_name: str) -> Optional[List[int]]:
        """The ``F.pad`` amounts to the fixed size (see :func:`fixed_size_padding`), or None without padding."""
        if self.size_divisibility <= 0:
            return None
        return fixed_size_padding(image_size, self.size_divisibility, file_name)

    @staticmethod
    def pad(tensor: Optional[torch.Tensor], padding: Optional[List[int]], value) -> Optional[torch.Tensor]:
        """``tensor`` (..., H, W) padded at the bottom and right with ``value`` (unchanged when
        ``padding`` or ``tensor`` is None)."""
        if tensor is None or padding is None:
            return tensor
        return F.pad(tensor, padding, value=value).contiguous()
