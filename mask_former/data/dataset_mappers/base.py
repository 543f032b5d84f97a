"""What the MaskFormer training mappers share: augmentations, image reading, label checks and fixed-size padding."""
from __future__ import annotations

import logging
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.nn import functional as F

from segcore.config import configurable
from segcore.data import detection_utils as utils
from segcore.data import transforms as T

__all__ = ["IMAGE_PAD_VALUE", "MaskFormerMapperBase", "apply_augmentations", "check_category_ids",
           "fixed_size_padding", "num_classes_from_config"]

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


def apply_augmentations(augmentations: Sequence[Union[T.Augmentation, T.Transform]], inputs, file_name: str):
    """:func:`segcore.data.transforms.apply_augmentations`, with the image file named in its errors.

    Args:
        augmentations: augmentations or transforms, applied in order.
        inputs: an :class:`~segcore.data.transforms.AugInput` (transformed in place) or an image array.
        file_name: the image file, named in the error.

    Returns:
        (transformed inputs, TransformList), as ``apply_augmentations``.

    Raises:
        ValueError: an augmentation cannot handle the image (e.g. a resize of an extreme aspect
            ratio to less than one pixel); the message names the file and its size.
    """
    image = inputs if isinstance(inputs, np.ndarray) else inputs.image
    try:
        return T.apply_augmentations(augmentations, inputs)
    except ValueError as e:
        size = "x".join(str(s) for s in image.shape[:2])
        raise ValueError(f"Cannot augment image '{file_name}' ({size} pixels, HxW): {e}") from e


def num_classes_from_config(cfg) -> Optional[int]:
    """The number of classes the training mappers check labels against: ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``
    (None, i.e. no check, for a config without that key)."""
    head = cfg.MODEL.get("SEM_SEG_HEAD", None)
    num_classes = None if head is None else head.get("NUM_CLASSES", None)
    return None if num_classes is None else int(num_classes)


def check_category_ids(annotations: Iterable[dict], num_classes: Optional[int], file_name: str, what: str) -> None:
    """Check the "category_id" of COCO segments or instance annotations against ``num_classes``.

    Every entry with a "category_id" is checked, crowd ones too (a wrong id there is the same
    annotation error); entries without one are left to the mapper's own key checks.

    Args:
        annotations: the dataset dict's "segments_info" or "annotations".
        num_classes: K, or None for no check.
        file_name: the file named in the error (the panoptic PNG, or the image of the annotations).
        what: what the entries are, for the message (e.g. "segment category ids").

    Raises:
        segcore.data.detection_utils.LabelOutOfRangeError: an id outside [0, K) (see
            :func:`~segcore.data.detection_utils.check_class_ids`).
    """
    if num_classes is None:
        return
    ids = [a["category_id"] for a in annotations if isinstance(a, dict) and "category_id" in a]
    utils.check_class_ids(ids, num_classes, file_name, what=what)


class MaskFormerMapperBase:
    """The base of the MaskFormer training mappers (semantic, panoptic, instance).

    Args:
        is_train: must be True when called (the original mappers are for training only).
        augmentations: augmentations or fixed transforms, applied in order.
        image_format: "RGB" or "BGR" (``INPUT.FORMAT``), see :func:`segcore.data.detection_utils.read_image`.
        size_divisibility: pad images and targets to exactly this height and width in pixels
            (``INPUT.SIZE_DIVISIBILITY``); <= 0 disables padding.
        num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``, see :func:`num_classes_from_config`):
            a label outside [0, K) (other than the ignore label) is an error naming the file
            (:meth:`check_label_map`, :meth:`check_category_ids`); None checks nothing.

    Subclasses provide ``from_config(cls, cfg, is_train)`` (the constructor is ``@configurable``).
    """

    @configurable
    def __init__(self, is_train: bool = True, *, augmentations: Sequence[Union[T.Augmentation, T.Transform]],
                 image_format: str, size_divisibility: int, num_classes: Optional[int] = None):
        self.is_train = is_train
        self.tfm_gens = list(augmentations)
        self.img_format = image_format
        self.size_divisibility = size_divisibility
        if num_classes is not None and int(num_classes) <= 0:
            raise ValueError(f"{type(self).__name__}: num_classes must be positive or None, got {num_classes}")
        self.num_classes = None if num_classes is None else int(num_classes)
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

    def check_label_map(self, labels: np.ndarray, ignore_label: Optional[int], file_name: str) -> None:
        """Check a label map's values against ``num_classes`` (no check when it is None).

        Args:
            labels: (H, W) class ids as read from ``file_name``.
            ignore_label: the value of ignored pixels (allowed), or None.
            file_name: the label file, named in the error.

        Raises:
            segcore.data.detection_utils.LabelOutOfRangeError: a label outside [0, K) that is
                not ``ignore_label`` (the message names the file and the values).
        """
        if self.num_classes is not None:
            utils.check_class_ids(labels, self.num_classes, file_name, what="labels", ignore_label=ignore_label)

    def check_category_ids(self, annotations: Iterable[dict], file_name: str, what: str) -> None:
        """:func:`check_category_ids` with this mapper's ``num_classes``."""
        check_category_ids(annotations, self.num_classes, file_name, what)

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
