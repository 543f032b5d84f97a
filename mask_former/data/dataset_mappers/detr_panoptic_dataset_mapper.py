"""DETR-style mapper for COCO panoptic segmentation (``INPUT.DATASET_MAPPER_NAME: detr_panoptic``).

Behaves as the original ``DETRPanopticDatasetMapper`` (facebookresearch/MaskFormer,
``mask_former/data/dataset_mappers/detr_panoptic_dataset_mapper.py``, itself after DETR's
Detectron2 mapper): the augmentation of DETR (Carion et al., "End-to-End Object Detection with
Transformers", ECCV 2020, Appendix A.4) used by MaskFormer's COCO panoptic configs.
"""
from __future__ import annotations

import copy
import logging
from typing import List, Optional

import numpy as np
import torch

from segcore.config import configurable
from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.data.panoptic_utils import rgb2id

from .base import apply_augmentations, check_category_ids, num_classes_from_config
from .mask_former_panoptic_dataset_mapper import read_panoptic_png, segments_to_instances

__all__ = ["CROP_PROBABILITY", "CROP_SHORT_EDGE_LENGTHS", "DETRPanopticDatasetMapper", "build_transform_gen"]

#: shorter-edge lengths (pixels) chosen from before DETR's random crop
CROP_SHORT_EDGE_LENGTHS = (400, 500, 600)
#: probability of taking the resize-crop-resize path instead of the plain resize
CROP_PROBABILITY = 0.5


def build_transform_gen(cfg, is_train: bool) -> List[T.Augmentation]:
    """The non-crop augmentations of the DETR mapper (the original's ``build_transform_gen``).

    Detectron2's default augmentations (:func:`segcore.data.detection_utils.build_augmentation`:
    ``ResizeShortestEdge`` from ``INPUT.{MIN,MAX}_SIZE_{TRAIN,TEST}`` and, in training, the
    ``INPUT.RANDOM_FLIP`` flip), with the flip first, as DETR orders them (so the random draws
    happen in the original's order).

    Raises:
        ValueError: "range" sampling without exactly two sizes in INPUT.MIN_SIZE_TRAIN, or an
            unknown INPUT.RANDOM_FLIP.
    """
    augs = utils.build_augmentation(cfg, is_train)
    flips = [a for a in augs if isinstance(a, T.RandomFlip)]
    tfm_gens = flips + [a for a in augs if not isinstance(a, T.RandomFlip)]
    if is_train:
        logging.getLogger(__name__).info("TransformGens used in training: %s", tfm_gens)
    return tfm_gens


@DATASET_MAPPER_REGISTRY.register("detr_panoptic")
class DETRPanopticDatasetMapper:
    """Map a COCO panoptic dataset dict with DETR's augmentation.

    Augmentation: with probability 1 - ``CROP_PROBABILITY`` (or always, without ``crop_gen``)
    ``tfm_gens`` = [RandomFlip, ResizeShortestEdge]; otherwise RandomFlip, then ``crop_gen`` =
    [ResizeShortestEdge((400, 500, 600), "choice"), RandomCrop(INPUT.CROP.TYPE, INPUT.CROP.SIZE)],
    then the final ResizeShortestEdge. One ``numpy.random.rand()`` draw decides, before the
    augmentations draw theirs (as in the original).

    Output dict (the input dict's keys plus):
        "image": uint8 (C, H, W) tensor (not padded: the model pads its batch).
        "instances" (training, when "pan_seg_file_name" is given): :class:`Instances` with
            ``gt_classes`` (N,) int64 (the non-crowd segments' "category_id") and ``gt_masks``
            (N, H, W) bool.
        "height", "width": the original image size in pixels.
    At inference the dict's "annotations" are dropped and only the image is added.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        crop_gen: Optional[List[T.Augmentation]],
        tfm_gens: List[T.Augmentation],
        image_format: str,
        num_classes: Optional[int] = None,
    ):
        """
        Args:
            is_train: build training targets (False: image only).
            crop_gen: augmentations inserted before the last of ``tfm_gens`` on the crop path,
                or None for no crop path.
            tfm_gens: the augmentations of the plain path; the last one is the final resize.
            image_format: "RGB" or "BGR" (``INPUT.FORMAT``), see :func:`read_image`.
            num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``): in training, a segment
                "category_id" outside [0, K) is an error naming the panoptic PNG; None checks nothing.

        Raises:
            ValueError: ``tfm_gens`` is empty, or ``num_classes`` is not positive.
        """
        if len(tfm_gens) == 0:
            raise ValueError("DETRPanopticDatasetMapper needs at least one augmentation in tfm_gens")
        if num_classes is not None and int(num_classes) <= 0:
            raise ValueError(f"DETRPanopticDatasetMapper: num_classes must be positive or None, got {num_classes}")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.crop_gen = crop_gen
        self.tfm_gens = tfm_gens
        logging.getLogger(__name__).info(
            "[DETRPanopticDatasetMapper] Full TransformGens used in training: %s, crop: %s", tfm_gens, crop_gen
        )
        self.img_format = image_format
        self.is_train = is_train

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        """``crop_gen`` when INPUT.CROP.ENABLED and training: [ResizeShortestEdge([400, 500, 600],
        sample_style="choice"), RandomCrop(INPUT.CROP.TYPE, INPUT.CROP.SIZE)]; ``tfm_gens`` from
        :func:`build_transform_gen`; ``num_classes`` MODEL.SEM_SEG_HEAD.NUM_CLASSES."""
        if cfg.INPUT.CROP.ENABLED and is_train:
            crop_gen = [
                T.ResizeShortestEdge(list(CROP_SHORT_EDGE_LENGTHS), sample_style="choice"),
                T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE),
            ]
        else:
            crop_gen = None
        return {
            "is_train": is_train,
            "crop_gen": crop_gen,
            "tfm_gens": build_transform_gen(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "num_classes": num_classes_from_config(cfg),
        }

    def augmentations_for(self, use_crop: bool) -> List[T.Augmentation]:
        """The augmentation list of the plain path (``use_crop=False``) or of the crop path."""
        if not use_crop or self.crop_gen is None:
            return list(self.tfm_gens)
        return self.tfm_gens[:-1] + self.crop_gen + self.tfm_gens[-1:]

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name", and for training targets "pan_seg_file_name" and
                "segments_info"; it is not modified.

        Returns:
            The model's input dict (see the class docstring).

        Raises:
            KeyError: "pan_seg_file_name" without "segments_info".
            LabelOutOfRangeError: in training, a segment "category_id" outside [0, ``num_classes``)
                (the message names the panoptic PNG and the values).
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable files or sizes
                that disagree (the messages name the files).
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        file_name = dataset_dict["file_name"]
        image = utils.read_image(file_name, format=self.img_format)
        utils.check_image_size(dataset_dict, image)
        original_image = image

        if self.crop_gen is None:
            augs = self.augmentations_for(False)
        else:
            # one draw per image, before the augmentations' own draws (as the original)
            augs = self.augmentations_for(np.random.rand() <= CROP_PROBABILITY)
        image, transforms = apply_augmentations(augs, image, file_name)

        image_shape = image.shape[:2]  # h, w
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict

        if "pan_seg_file_name" in dataset_dict:
            if "segments_info" not in dataset_dict:
                raise KeyError(f"Panoptic dataset dict of '{file_name}' has no 'segments_info'")
            pan_seg_file = dataset_dict.pop("pan_seg_file_name")
            check_category_ids(dataset_dict["segments_info"], self.num_classes, pan_seg_file, "segment category ids")
            pan_seg_gt = read_panoptic_png(pan_seg_file, original_image, file_name)
            pan_seg_gt = rgb2id(transforms.apply_segmentation(pan_seg_gt))
            dataset_dict["instances"] = segments_to_instances(pan_seg_gt, dataset_dict["segments_info"], image_shape)
        return dataset_dict
