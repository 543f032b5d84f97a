"""``DatasetMapper``: the default mapper of the loaders (Detectron2's ``detectron2/data/dataset_mapper.py``).

It reads the image and (if named) the semantic label map, applies the config's default
augmentations and returns tensors. Instance annotations ("annotations") are dropped at
inference; training on them needs a model family's mapper.
"""
from __future__ import annotations

import copy
import logging
from typing import List, Union

import numpy as np
import torch

from segcore.config import configurable

from . import detection_utils as utils
from . import transforms as T

__all__ = ["DatasetMapper"]


class DatasetMapper:
    """Map a Detectron2-format dataset dict to the model's input dict.

    Output keys: ``"image"`` uint8 (C, H, W) tensor in ``image_format`` after augmentation,
    ``"height"`` / ``"width"`` (the original image size, for resizing predictions back),
    ``"sem_seg"`` int64 (H, W) when the dict names a ``"sem_seg_file_name"``, plus the input
    dict's other keys.
    """

    @configurable
    def __init__(self, is_train: bool, *, augmentations: List[Union[T.Augmentation, T.Transform]], image_format: str):
        """
        Args:
            is_train: training (instance annotations are an error) or inference (they are dropped).
            augmentations: augmentations or fixed transforms, applied in order.
            image_format: "RGB", "BGR" or "L" (see :func:`read_image`).
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info("[DatasetMapper] Augmentations used in %s: %s", mode, augmentations)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        augs: List[T.Augmentation] = utils.build_augmentation(cfg, is_train)
        if cfg.INPUT.CROP.ENABLED and is_train:
            augs.insert(0, T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
        return {"is_train": is_train, "augmentations": augs, "image_format": cfg.INPUT.FORMAT}

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name" and optionally "sem_seg_file_name", "height", "width".

        Raises:
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable or inconsistent
                files (the messages name them).
            NotImplementedError: instance annotations in training.
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)

        sem_seg_gt = None
        if "sem_seg_file_name" in dataset_dict:
            sem_seg_file = dataset_dict.pop("sem_seg_file_name")
            sem_seg_gt = utils.read_sem_seg(sem_seg_file)
            utils.check_sem_seg_size(image, sem_seg_gt, dataset_dict["file_name"], sem_seg_file)
            if sem_seg_gt.dtype != np.uint8:
                # the resize of non-uint8 arrays goes through torch, which wants a float type
                sem_seg_gt = sem_seg_gt.astype("double")

        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        self.augmentations(aug_input)
        image, sem_seg_gt = aug_input.image, aug_input.sem_seg

        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg_gt.astype("long"))

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict
        if "annotations" in dataset_dict:
            raise NotImplementedError(
                f"DatasetMapper does not train on instance annotations ('{dataset_dict['file_name']}'); "
                "use the mapper of the model family (INPUT.DATASET_MAPPER_NAME)"
            )
        return dataset_dict
