"""Mask2Former's LSJ training mapper for COCO panoptic segmentation (``INPUT.DATASET_MAPPER_NAME: coco_panoptic_lsj``).

Behaves as the original ``COCOPanopticNewBaselineDatasetMapper`` (facebookresearch/Mask2Former,
``mask2former/data/dataset_mappers/coco_panoptic_new_baseline_dataset_mapper.py``): large-scale
jitter (Mask2Former Sec. 4.1; Ghiasi et al. 2021) on the image and its COCO-format panoptic PNG,
one class-mask pair (and box) per non-crowd segment.
"""
from __future__ import annotations

import copy

from mask_former.data.dataset_mappers.mask_former_panoptic_dataset_mapper import (
    PANOPTIC_VOID_ID,
    read_panoptic_png,
    segments_to_instances,
)
from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data.panoptic_utils import rgb2id
from segcore.structures import BitMasks

from .lsj import LSJMapperBase

__all__ = ["COCOPanopticLSJDatasetMapper"]


@DATASET_MAPPER_REGISTRY.register("coco_panoptic_lsj")
class COCOPanopticLSJDatasetMapper(LSJMapperBase):
    """Map a COCO panoptic dataset dict to Mask2Former's training input with large-scale jitter.

    Steps: read the image and the panoptic PNG ("pan_seg_file_name", segment ids as RGB); apply
    the augmentations (from a config: random flip, random-scale resize, crop and pad to
    ``INPUT.IMAGE_SIZE``, see :func:`~mask2former.data.dataset_mappers.lsj.build_lsj_augmentation`)
    to both, the PNG's colours with nearest-neighbour resizing; build one mask per non-crowd
    segment (:func:`~mask_former.data.dataset_mappers.mask_former_panoptic_dataset_mapper.segments_to_instances`).

    Output dict (the input dict's keys except "pan_seg_file_name", plus):
        "image": uint8 (C, S, S) tensor (S = ``INPUT.IMAGE_SIZE`` pixels), padded with 128.
        "padding_mask": bool (S, S) tensor, True on the pixels the crop padded.
        "instances": :class:`Instances` of image size (S, S) with ``gt_classes`` (N,) int64 (the
            segments' "category_id", in ``segments_info`` order), ``gt_masks`` (N, S, S) bool
            (padding belongs to no mask) and ``gt_boxes`` (:class:`Boxes`, (N, 4) float32 XYXY
            pixels, the tight box of each mask, x1/y1 exclusive). As in the original, a segment
            cropped away keeps an empty mask and the box (0, 0, 0, 0).
        "height", "width": the original image size in pixels.

    A "sem_seg_file_name" in the dict is left there and not read (as in the original).

    Constructor arguments and ``from_config``: those of :class:`LSJMapperBase`.
    """

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name", "pan_seg_file_name" and "segments_info" (each with
                "id", "category_id" (contiguous class id) and optionally "iscrowd"); it is not
                modified.

        Returns:
            The model's input dict (see the class docstring).

        Raises:
            RuntimeError: the mapper was built with ``is_train=False``.
            ValueError: no "pan_seg_file_name".
            KeyError: no "segments_info", or a segment without "id" or "category_id".
            LabelOutOfRangeError: a segment "category_id" outside [0, ``num_classes``) (the
                message names the panoptic PNG and the values).
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable files, or sizes
                that disagree (the messages name the files).
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        file_name = dataset_dict["file_name"]
        image = self.read_checked_image(dataset_dict)
        if "pan_seg_file_name" not in dataset_dict:
            raise ValueError(f"Cannot find 'pan_seg_file_name' for panoptic segmentation dataset {file_name}.")
        if "segments_info" not in dataset_dict:
            raise KeyError(f"Panoptic dataset dict of '{file_name}' has no 'segments_info'")
        pan_seg_file = dataset_dict.pop("pan_seg_file_name")
        self.check_category_ids(dataset_dict["segments_info"], pan_seg_file, "segment category ids")
        pan_seg_gt = read_panoptic_png(pan_seg_file, image, file_name)

        image, transforms, padding_mask = self.augment(image, file_name)
        # the same geometry for the panoptic map: colours are resized with nearest neighbour
        pan_seg_gt = rgb2id(transforms.apply_segmentation(pan_seg_gt))
        # the crop pads label maps with 255, i.e. the id of (255, 255, 255): make padding VOID instead
        pan_seg_gt[padding_mask.numpy()] = PANOPTIC_VOID_ID

        image_shape = (image.shape[0], image.shape[1])  # h, w
        instances = segments_to_instances(pan_seg_gt, dataset_dict["segments_info"], image_shape)
        instances.gt_boxes = BitMasks(instances.gt_masks).get_bounding_boxes()

        dataset_dict["image"] = self.image_to_tensor(image)
        dataset_dict["padding_mask"] = padding_mask
        dataset_dict["instances"] = instances
        return dataset_dict

