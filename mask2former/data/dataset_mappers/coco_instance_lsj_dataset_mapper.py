"""Mask2Former's LSJ training mapper for COCO instance segmentation (``INPUT.DATASET_MAPPER_NAME: coco_instance_lsj``).

Behaves as the original ``COCOInstanceNewBaselineDatasetMapper`` (facebookresearch/Mask2Former,
``mask2former/data/dataset_mappers/coco_instance_new_baseline_dataset_mapper.py``): large-scale
jitter (Mask2Former Sec. 4.1; Ghiasi et al. 2021) on the image and its non-crowd instance
annotations, one class-mask pair per instance that is still visible afterwards.
"""
from __future__ import annotations

import copy
from typing import List

import numpy as np
import torch

from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import detection_utils as utils
from segcore.structures import BitMasks, Instances

from .lsj import LSJMapperBase

__all__ = ["COCOInstanceLSJDatasetMapper"]


@DATASET_MAPPER_REGISTRY.register("coco_instance_lsj")
class COCOInstanceLSJDatasetMapper(LSJMapperBase):
    """Map a COCO-style instance dataset dict to Mask2Former's training input with large-scale jitter.

    Steps: read the image; apply the augmentations (from a config: random flip, random-scale
    resize, crop and pad to ``INPUT.IMAGE_SIZE``, see
    :func:`~mask2former.data.dataset_mappers.lsj.build_lsj_augmentation`); transform the non-crowd
    annotations with the same transforms (polygons as polygons, RLE as a mask); rasterize them at
    the output size; compute each mask's tight box; drop the instances left empty.

    Output dict (the input dict's keys except "annotations", plus):
        "image": uint8 (C, S, S) tensor (S = ``INPUT.IMAGE_SIZE`` pixels), padded with 128.
        "padding_mask": bool (S, S) tensor, True on the pixels the crop padded.
        "instances": :class:`Instances` of image size (S, S) with ``gt_classes`` (N,) int64 (the
            annotations' "category_id"), ``gt_masks`` (N, S, S) bool (padding belongs to no
            mask) and ``gt_boxes`` (:class:`Boxes`, (N, 4) float32 XYXY pixels, the tight box of
            each mask, x1/y1 exclusive). Instances with an empty mask or box are dropped.
        "height", "width": the original image size in pixels.

    Constructor arguments and ``from_config``: those of :class:`LSJMapperBase`.
    """

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: with "file_name" and "annotations" (each with "bbox", "bbox_mode",
                "category_id", "segmentation" (polygons or COCO RLE) and optionally "iscrowd");
                it is not modified.

        Returns:
            The model's input dict (see the class docstring).

        Raises:
            RuntimeError: the mapper was built with ``is_train=False``.
            KeyError: no "annotations", or a non-crowd annotation without "segmentation",
                "bbox" or "bbox_mode" (the message names the image file).
            ValueError: an unsupported segmentation, or an RLE whose size is not the image's.
            LabelOutOfRangeError: a "category_id" outside [0, ``num_classes``) (the message names
                the image and the values).
            FileNotFoundError / ImageReadError / SizeMismatchError: unreadable image, or a size
                that disagrees with the dict's "height"/"width".
        """
        dataset_dict = copy.deepcopy(dataset_dict)  # modified below
        file_name = dataset_dict["file_name"]
        image = self.read_checked_image(dataset_dict)
        if "annotations" not in dataset_dict:
            raise KeyError(f"Instance dataset dict of '{file_name}' has no 'annotations'")
        self.check_category_ids(dataset_dict["annotations"], file_name, "annotation category ids")
        original_shape = image.shape[:2]

        image, transforms, padding_mask = self.augment(image, file_name)
        image_shape = (image.shape[0], image.shape[1])  # h, w

        annos: List[dict] = []
        for i, obj in enumerate(dataset_dict.pop("annotations")):
            if obj.get("iscrowd", 0) != 0:
                continue
            obj.pop("keypoints", None)
            for key in ("segmentation", "bbox", "bbox_mode", "category_id"):
                if key not in obj:
                    raise KeyError(f"Annotation {i} of '{file_name}' has no '{key}' (keys: {sorted(obj)})")
            segm = obj["segmentation"]
            if not isinstance(segm, (list, dict)):
                raise ValueError(
                    f"Annotation {i} of '{file_name}' has a segmentation of type '{type(segm).__name__}'; "
                    "expected polygons (a list of flat [x0, y0, x1, y1, ...] lists) or a COCO RLE dict"
                )
            if isinstance(segm, dict) and "size" in segm and tuple(segm["size"]) != tuple(original_shape):
                raise ValueError(
                    f"Annotation {i} of '{file_name}' has an RLE of size {tuple(segm['size'])} but the image is "
                    f"{tuple(original_shape)} (H, W)"
                )
            annos.append(utils.transform_instance_annotations(obj, transforms, image_shape))

        instances = self.annotations_to_instances(annos, image_shape, file_name)
        dataset_dict["image"] = self.image_to_tensor(image)
        dataset_dict["padding_mask"] = padding_mask
        dataset_dict["instances"] = instances
        return dataset_dict

    @staticmethod
    def annotations_to_instances(annos: List[dict], image_shape, file_name: str) -> Instances:
        """Instances from transformed annotations: masks rasterized, boxes from the masks, empty ones dropped.

        As the original, the boxes are recomputed from the masks: after a crop the transformed
        box of an object need not bound it tightly.

        Args:
            annos: annotations after ``transform_instance_annotations``, with "category_id" and
                "segmentation" (polygons or an (H, W) uint8 mask); their boxes are not read.
            image_shape: (H, W) of the augmented image in pixels.
            file_name: the image file, named in error messages.

        Returns:
            Instances with ``gt_classes`` (N,) int64, ``gt_masks`` (N, H, W) bool and
            ``gt_boxes`` (Boxes, (N, 4) float32).

        Raises:
            ValueError: a segmentation that is neither polygons nor an (H, W) mask (the message
                names the file).
        """
        h, w = int(image_shape[0]), int(image_shape[1])
        where = f" (annotation of '{file_name}')"
        masks = [
            torch.from_numpy(np.ascontiguousarray(utils.segmentation_to_bitmask(segm, h, w, where), bool))
            for segm in (obj["segmentation"] for obj in annos)
        ]
        bitmasks = BitMasks(torch.stack(masks) if masks else torch.zeros((0, h, w), dtype=torch.bool))
        instances = Instances((h, w))
        instances.gt_classes = torch.tensor([int(obj["category_id"]) for obj in annos], dtype=torch.int64)
        instances.gt_masks = bitmasks
        instances.gt_boxes = bitmasks.get_bounding_boxes()
        instances = utils.filter_empty_instances(instances)
        instances.gt_masks = instances.gt_masks.tensor
        return instances
