"""The MaskFormer training mapper for semantic segmentation (``INPUT.DATASET_MAPPER_NAME: mask_former_semantic``).

Behaves as the original ``MaskFormerSemanticDatasetMapper`` (facebookresearch/MaskFormer,
``mask_former/data/dataset_mappers/mask_former_semantic_dataset_mapper.py``): the label map is
turned into one binary mask per class present (Cheng et al., "Per-Pixel Classification is Not
All You Need for Semantic Segmentation", NeurIPS 2021, Sec. 3.1: semantic segmentation as a
set of class-mask pairs).
"""
from __future__ import annotations

import copy
from typing import List, Optional, Union

import numpy as np
import torch

from segcore.config import configurable
from segcore.data import DATASET_MAPPER_REGISTRY, MetadataCatalog
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.structures import BitMasks, Instances

from .base import IMAGE_PAD_VALUE, MaskFormerMapperBase, apply_augmentations, num_classes_from_config

__all__ = ["MaskFormerSemanticDatasetMapper"]


@DATASET_MAPPER_REGISTRY.register("mask_former_semantic")
class MaskFormerSemanticDatasetMapper(MaskFormerMapperBase):
    """Map a semantic-segmentation dataset dict to MaskFormer's training input.

    Steps: read the image (``image_format``) and the label map, check their sizes, apply the
    augmentations to both, pad (if ``size_divisibility > 0``) and build per-class masks.

    Output dict (the input dict's keys plus):
        "image": uint8 (C, H, W) tensor.
        "sem_seg": int64 (H, W) tensor of class ids, ``ignore_label`` where ignored or padded.
        "instances": :class:`Instances` of image size (H, W) with ``gt_classes`` (N,) int64 (the
            classes present, ascending, ignore label excluded) and ``gt_masks`` (N, H, W) bool.
        "height", "width": the original image size in pixels (set by ``check_image_size``).

    Padding: as in the original, ``size_divisibility`` is used as a fixed size: the image and
    label map are padded at the bottom and right to exactly ``size_divisibility`` x
    ``size_divisibility`` pixels (image with 128, labels with ``ignore_label``); the configs pair it
    with an ``absolute`` crop of that size.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        augmentations: List[Union[T.Augmentation, T.Transform]],
        image_format: str,
        ignore_label: int,
        size_divisibility: int,
        num_classes: Optional[int] = None,
    ):
        """
        Args:
            is_train: must be True when called (the original mapper is for training only).
            augmentations: augmentations or fixed transforms, applied in order.
            image_format: "RGB" or "BGR" (``INPUT.FORMAT``), see :func:`read_image`.
            ignore_label: label value of ignored pixels (the dataset's ``ignore_label``).
            size_divisibility: pad to exactly this height and width in pixels; <= 0 disables.
            num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``): labels outside [0, K) other than
                ``ignore_label`` are an error naming the label file; None checks nothing.
        """
        super().__init__(is_train, augmentations=augmentations, image_format=image_format,
                         size_divisibility=size_divisibility, num_classes=num_classes)
        self.ignore_label = ignore_label

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        """Augmentations: ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN,
        INPUT.MIN_SIZE_TRAIN_SAMPLING); RandomCrop_CategoryAreaConstraint(INPUT.CROP.TYPE,
        INPUT.CROP.SIZE, INPUT.CROP.SINGLE_CATEGORY_MAX_AREA, MODEL.SEM_SEG_HEAD.IGNORE_VALUE) if
        INPUT.CROP.ENABLED; ColorAugSSDTransform(INPUT.FORMAT) if INPUT.COLOR_AUG_SSD; RandomFlip.
        ``ignore_label`` comes from the metadata of the first training dataset, ``num_classes``
        from MODEL.SEM_SEG_HEAD.NUM_CLASSES.

        Raises:
            ValueError: DATASETS.TRAIN is empty.
            AttributeError: the first training dataset has no ``ignore_label`` metadata.
        """
        augs: List[Union[T.Augmentation, T.Transform]] = [
            T.ResizeShortestEdge(
                cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
            )
        ]
        if cfg.INPUT.CROP.ENABLED:
            augs.append(
                T.RandomCrop_CategoryAreaConstraint(
                    cfg.INPUT.CROP.TYPE,
                    cfg.INPUT.CROP.SIZE,
                    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA,
                    cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
                )
            )
        if cfg.INPUT.COLOR_AUG_SSD:
            augs.append(T.ColorAugSSDTransform(img_format=cfg.INPUT.FORMAT))
        augs.append(T.RandomFlip())

        # the training set decides the ignore label, as in the original
        if len(cfg.DATASETS.TRAIN) == 0:
            raise ValueError("MaskFormerSemanticDatasetMapper needs a training dataset (DATASETS.TRAIN is empty)")
        ignore_label = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).ignore_label
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "ignore_label": ignore_label,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
            "num_classes": num_classes_from_config(cfg),
        }

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name" and "sem_seg_file_name" (and optionally "height",
                "width"); it is not modified.

        Returns:
            The model's input dict (see the class docstring).

        Raises:
            RuntimeError: the mapper was built with ``is_train=False``.
            ValueError: no "sem_seg_file_name", instance "annotations" present, or an augmented
                image larger than ``size_divisibility``.
            LabelOutOfRangeError: a label outside [0, ``num_classes``) that is not the ignore
                label (the message names the label file and the values).
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable files or sizes
                that disagree (the messages name the files).
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        image = self.read_checked_image(dataset_dict)

        if "sem_seg_file_name" not in dataset_dict:
            raise ValueError(
                f"Cannot find 'sem_seg_file_name' for semantic segmentation dataset {dataset_dict['file_name']}."
            )
        sem_seg_file = dataset_dict.pop("sem_seg_file_name")
        sem_seg_gt = utils.read_sem_seg(sem_seg_file)
        self.check_label_map(sem_seg_gt, self.ignore_label, sem_seg_file)
        # torch cannot resize uint16, so labels go through the augmentations as float64 (as the original)
        sem_seg_gt = sem_seg_gt.astype("double")
        utils.check_sem_seg_size(image, sem_seg_gt, dataset_dict["file_name"], sem_seg_file)
        if "annotations" in dataset_dict:
            raise ValueError(
                f"Semantic segmentation dataset should not have 'annotations' ({dataset_dict['file_name']})."
            )

        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        aug_input, _ = apply_augmentations(self.tfm_gens, aug_input, dataset_dict["file_name"])
        image = aug_input.image
        sem_seg_gt = aug_input.sem_seg

        image = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        sem_seg_gt = torch.as_tensor(sem_seg_gt.astype("long"))

        padding = self.padding(image.shape[-2:], dataset_dict["file_name"])
        image = self.pad(image, padding, IMAGE_PAD_VALUE)
        sem_seg_gt = self.pad(sem_seg_gt, padding, self.ignore_label)

        image_shape = (image.shape[-2], image.shape[-1])  # h, w
        # tensors pass between data-loader workers through shared memory (cheap), unlike Python objects
        dataset_dict["image"] = image
        dataset_dict["sem_seg"] = sem_seg_gt.long()

        # one binary mask per class present
        sem_seg_np = sem_seg_gt.numpy()
        instances = Instances(image_shape)
        classes = np.unique(sem_seg_np)
        classes = classes[classes != self.ignore_label]
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        if len(classes) == 0:
            # every pixel ignored
            instances.gt_masks = torch.zeros((0, sem_seg_np.shape[-2], sem_seg_np.shape[-1]), dtype=torch.bool)
        else:
            masks = BitMasks(torch.stack([torch.from_numpy(np.ascontiguousarray(sem_seg_np == c)) for c in classes]))
            instances.gt_masks = masks.tensor
        dataset_dict["instances"] = instances
        return dataset_dict
