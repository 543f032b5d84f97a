"""The mask-classification training mapper for instance segmentation (``INPUT.DATASET_MAPPER_NAME: mask_former_instance``).

Behaves as Mask2Former's ``MaskFormerInstanceDatasetMapper`` (facebookresearch/Mask2Former,
``mask2former/data/dataset_mappers/mask_former_instance_dataset_mapper.py``): each non-crowd
COCO instance annotation (polygons or RLE) becomes one class-mask pair after the augmentations.
"""
from __future__ import annotations

import copy
from typing import List, Union

import numpy as np
import torch

from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.structures import BitMasks, Instances

from .base import IMAGE_PAD_VALUE, MaskFormerMapperBase, apply_augmentations, num_classes_from_config

__all__ = ["MaskFormerInstanceDatasetMapper"]


@DATASET_MAPPER_REGISTRY.register("mask_former_instance")
class MaskFormerInstanceDatasetMapper(MaskFormerMapperBase):
    """Map a COCO-style instance dataset dict to the model's training input.

    Steps: read the image, apply the augmentations, transform the non-crowd annotations with
    the same transforms (:func:`transform_instance_annotations`: polygons stay polygons, RLE is
    decoded and warped as a mask), rasterize them at the augmented size, pad.

    Output dict (the input dict's keys except "annotations", plus):
        "image": uint8 (C, H, W) tensor, padded with 128.
        "instances": :class:`Instances` of the padded size with ``gt_classes`` (N,) int64 (the
            annotations' "category_id") and ``gt_masks`` (N, H, W) bool, padded with False.
            As in the original, instances whose mask became empty (e.g. cropped away) are kept.
        "height", "width": the original image size in pixels.

    Padding: as in the original, to exactly ``size_divisibility`` x ``size_divisibility`` pixels
    (bottom and right) when ``size_divisibility > 0``.

    Constructor arguments: those of :class:`MaskFormerMapperBase`; with ``num_classes`` every
    annotation's "category_id" must lie in [0, ``num_classes``).
    """

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        """Augmentations: ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN,
        INPUT.MIN_SIZE_TRAIN_SAMPLING); RandomCrop(INPUT.CROP.TYPE, INPUT.CROP.SIZE) if
        INPUT.CROP.ENABLED; ColorAugSSDTransform(INPUT.FORMAT) if INPUT.COLOR_AUG_SSD; RandomFlip.
        ``num_classes``: MODEL.SEM_SEG_HEAD.NUM_CLASSES."""
        augs: List[Union[T.Augmentation, T.Transform]] = [
            T.ResizeShortestEdge(
                cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
            )
        ]
        if cfg.INPUT.CROP.ENABLED:
            augs.append(T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
        if cfg.INPUT.COLOR_AUG_SSD:
            augs.append(T.ColorAugSSDTransform(img_format=cfg.INPUT.FORMAT))
        augs.append(T.RandomFlip())
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
            "num_classes": num_classes_from_config(cfg),
        }

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name" and "annotations" (each with "bbox", "bbox_mode",
                "category_id", "segmentation" and optionally "iscrowd"); it is not modified.

        Returns:
            The model's input dict (see the class docstring).

        Raises:
            RuntimeError: the mapper was built with ``is_train=False``.
            KeyError: no "annotations", or a non-crowd annotation without "segmentation".
            ValueError: an unsupported segmentation, or an augmented image larger than
                ``size_divisibility``.
            LabelOutOfRangeError: a "category_id" outside [0, ``num_classes``) (the message
                names the image and the values).
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable image or a size
                that disagrees with the dict's.
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        file_name = dataset_dict["file_name"]
        image = self.read_checked_image(dataset_dict)
        if "annotations" not in dataset_dict:
            raise KeyError(f"Instance dataset dict of '{file_name}' has no 'annotations'")
        self.check_category_ids(dataset_dict["annotations"], file_name, "annotation category ids")

        aug_input = T.AugInput(image)
        aug_input, transforms = apply_augmentations(self.tfm_gens, aug_input, file_name)
        image = aug_input.image
        h, w = image.shape[:2]
        annos = []
        for i, obj in enumerate(dataset_dict.pop("annotations")):
            if obj.get("iscrowd", 0) != 0:
                continue
            obj.pop("keypoints", None)
            if "segmentation" not in obj:
                raise KeyError(f"Annotation {i} of '{file_name}' has no 'segmentation' (keys: {sorted(obj)})")
            annos.append(utils.transform_instance_annotations(obj, transforms, (h, w)))

        masks = [
            utils.segmentation_to_bitmask(obj["segmentation"], h, w, f" (annotation of '{file_name}')")
            for obj in annos
        ]
        image = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask_tensors = [torch.from_numpy(np.ascontiguousarray(x)).to(torch.bool) for x in masks]
        classes = torch.tensor([int(obj["category_id"]) for obj in annos], dtype=torch.int64)

        padding = self.padding((h, w), file_name)
        image = self.pad(image, padding, IMAGE_PAD_VALUE)
        mask_tensors = [self.pad(x, padding, False) for x in mask_tensors]

        image_shape = (image.shape[-2], image.shape[-1])  # h, w
        dataset_dict["image"] = image

        instances = Instances(image_shape)
        instances.gt_classes = classes
        if len(mask_tensors) == 0:
            # no (non-crowd) instance in the image
            instances.gt_masks = torch.zeros((0, image_shape[0], image_shape[1]), dtype=torch.bool)
        else:
            instances.gt_masks = BitMasks(torch.stack(mask_tensors)).tensor
        dataset_dict["instances"] = instances
        return dataset_dict
