"""The MaskFormer training mapper for panoptic segmentation (``INPUT.DATASET_MAPPER_NAME: mask_former_panoptic``).

Behaves as the original ``MaskFormerPanopticDatasetMapper`` (facebookresearch/MaskFormer,
``mask_former/data/dataset_mappers/mask_former_panoptic_dataset_mapper.py``): each non-crowd
segment of the COCO-format panoptic PNG becomes one class-mask pair (Cheng et al., "Per-Pixel
Classification is Not All You Need for Semantic Segmentation", NeurIPS 2021, Sec. 3.1). The
augmentations are those of :class:`MaskFormerSemanticDatasetMapper`.
"""
from __future__ import annotations

import copy
from typing import List, Optional

import numpy as np
import torch

from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.data.panoptic_utils import rgb2id
from segcore.structures import BitMasks, Instances

from .base import IMAGE_PAD_VALUE, apply_augmentations
from .mask_former_semantic_dataset_mapper import MaskFormerSemanticDatasetMapper

__all__ = ["MaskFormerPanopticDatasetMapper", "PANOPTIC_VOID_ID", "segments_to_instances"]

#: panoptic segment id of unlabeled (VOID) pixels, also used for the padding
PANOPTIC_VOID_ID = 0


def segments_to_instances(pan_seg: np.ndarray, segments_info: List[dict], image_shape) -> Instances:
    """One class-mask pair per non-crowd segment (as the original MaskFormer panoptic mappers).

    Args:
        pan_seg: (H, W) integer array of panoptic segment ids.
        segments_info: the image's segments, each with "id", "category_id" (contiguous class id)
            and "iscrowd" (missing means 0); crowd segments are skipped.
        image_shape: (H, W) of the Instances.

    Returns:
        Instances with ``gt_classes`` (N,) int64 (in ``segments_info`` order) and ``gt_masks``
        (N, H, W) bool (``pan_seg == id``; a segment absent from the map, e.g. cropped away,
        gives an empty mask, as in the original).

    Raises:
        KeyError: a segment without "id" or "category_id".
    """
    classes, masks = [], []
    for i, segment_info in enumerate(segments_info):
        for key in ("id", "category_id"):
            if key not in segment_info:
                raise KeyError(f"segments_info[{i}] has no '{key}' (keys: {sorted(segment_info)})")
        if not segment_info.get("iscrowd", 0):
            classes.append(segment_info["category_id"])
            masks.append(pan_seg == segment_info["id"])
    instances = Instances(tuple(image_shape))
    instances.gt_classes = torch.tensor(np.array(classes, dtype=np.int64), dtype=torch.int64)
    if len(masks) == 0:
        # every segment is crowd, or the image has none
        instances.gt_masks = torch.zeros((0, pan_seg.shape[-2], pan_seg.shape[-1]), dtype=torch.bool)
    else:
        instances.gt_masks = BitMasks(torch.stack([torch.from_numpy(np.ascontiguousarray(x)) for x in masks])).tensor
    return instances


def read_panoptic_png(file_name: str, image: np.ndarray, image_file: str) -> np.ndarray:
    """Read a COCO panoptic PNG as an (H, W, 3) uint8 RGB array and check it has the image's size.

    See :func:`segcore.data.detection_utils.read_pan_seg` for the PNG modes accepted.

    Raises:
        FileNotFoundError / ImageReadError: the file is missing or unreadable.
        ValueError: a PNG mode whose colours cannot be read exactly (e.g. 16-bit grayscale).
        SizeMismatchError: its size differs from the image's (both files are named).
    """
    pan_seg = utils.read_pan_seg(file_name)
    if tuple(pan_seg.shape[:2]) != tuple(image.shape[:2]):
        raise utils.SizeMismatchError(
            f"Panoptic segmentation '{file_name}' has size (H, W) = {tuple(pan_seg.shape[:2])} but its image "
            f"'{image_file}' has size {tuple(image.shape[:2])}; an annotation must have its image's size."
        )
    return pan_seg


@DATASET_MAPPER_REGISTRY.register("mask_former_panoptic")
class MaskFormerPanopticDatasetMapper(MaskFormerSemanticDatasetMapper):
    """Map a panoptic-segmentation dataset dict to MaskFormer's training input.

    Steps: read the image, the panoptic PNG ("pan_seg_file_name", colours turned into segment
    ids by :func:`rgb2id`) and, when given, the semantic label map ("sem_seg_file_name"); apply
    the augmentations (the panoptic map with nearest-neighbour resizing, through the transforms'
    ``apply_segmentation``); pad; build one mask per non-crowd segment.

    Constructor arguments and ``from_config`` are those of :class:`MaskFormerSemanticDatasetMapper`;
    with ``num_classes`` the segments' "category_id" (and the semantic labels, when read) must
    lie in [0, ``num_classes``).

    Output dict (the input dict's keys plus):
        "image": uint8 (C, H, W) tensor, padded with 128.
        "sem_seg": int64 (H, W) tensor, only when "sem_seg_file_name" was given (padded with
            ``ignore_label``).
        "instances": :class:`Instances` of image size (H, W) with ``gt_classes`` (N,) int64 (the
            segments' "category_id") and ``gt_masks`` (N, H, W) bool; padding belongs to no mask.
        "height", "width": the original image size in pixels.

    Padding: as in the original, to exactly ``size_divisibility`` x ``size_divisibility`` pixels
    (bottom and right) when ``size_divisibility > 0``; panoptic ids are padded with 0 (VOID).
    """

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name", "pan_seg_file_name", "segments_info" and optionally
                "sem_seg_file_name", "height", "width"; it is not modified.

        Returns:
            The model's input dict (see the class docstring).

        Raises:
            RuntimeError: the mapper was built with ``is_train=False``.
            ValueError: no "pan_seg_file_name", instance "annotations" present, or an augmented
                image larger than ``size_divisibility``.
            KeyError: no "segments_info".
            LabelOutOfRangeError: a segment "category_id" or a semantic label outside
                [0, ``num_classes``) (the message names the file and the values).
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable files or sizes
                that disagree (the messages name the files).
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        file_name = dataset_dict["file_name"]
        image = self.read_checked_image(dataset_dict)

        sem_seg_gt: Optional[np.ndarray] = None
        if "sem_seg_file_name" in dataset_dict:
            sem_seg_file = dataset_dict.pop("sem_seg_file_name")
            sem_seg_gt = utils.read_sem_seg(sem_seg_file)
            self.check_label_map(sem_seg_gt, self.ignore_label, sem_seg_file)
            # torch cannot resize uint16, so labels go through the augmentations as float64 (as the original)
            sem_seg_gt = sem_seg_gt.astype("double")
            utils.check_sem_seg_size(image, sem_seg_gt, file_name, sem_seg_file)

        if "pan_seg_file_name" not in dataset_dict:
            raise ValueError(f"Cannot find 'pan_seg_file_name' for panoptic segmentation dataset {file_name}.")
        if "segments_info" not in dataset_dict:
            raise KeyError(f"Panoptic dataset dict of '{file_name}' has no 'segments_info'")
        if "annotations" in dataset_dict:
            raise ValueError(f"Panoptic segmentation dataset should not have 'annotations' ({file_name}).")
        pan_seg_file = dataset_dict.pop("pan_seg_file_name")
        segments_info = dataset_dict["segments_info"]
        self.check_category_ids(segments_info, pan_seg_file, "segment category ids")
        pan_seg_gt = read_panoptic_png(pan_seg_file, image, file_name)

        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        aug_input, transforms = apply_augmentations(self.tfm_gens, aug_input, file_name)
        image = aug_input.image
        if sem_seg_gt is not None:
            sem_seg_gt = aug_input.sem_seg

        # the same geometry for the panoptic map: colours are resized with nearest neighbour
        pan_seg_gt = rgb2id(transforms.apply_segmentation(pan_seg_gt))

        image = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg_gt is not None:
            sem_seg_gt = torch.as_tensor(sem_seg_gt.astype("long"))
        pan_seg_gt = torch.as_tensor(pan_seg_gt.astype("long"))

        padding = self.padding(image.shape[-2:], file_name)
        image = self.pad(image, padding, IMAGE_PAD_VALUE)
        sem_seg_gt = self.pad(sem_seg_gt, padding, self.ignore_label)
        pan_seg_gt = self.pad(pan_seg_gt, padding, PANOPTIC_VOID_ID)

        image_shape = (image.shape[-2], image.shape[-1])  # h, w
        # tensors pass between data-loader workers through shared memory (cheap), unlike Python objects
        dataset_dict["image"] = image
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = sem_seg_gt.long()
        dataset_dict["instances"] = segments_to_instances(pan_seg_gt.numpy(), segments_info, image_shape)
        return dataset_dict
