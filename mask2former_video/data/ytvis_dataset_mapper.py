"""The clip mapper of YouTube-VIS-format videos (the original ``YTVISDatasetMapper``,
``mask2former_video/data_video/dataset_mapper.py``), registered as ``"ytvis"`` in
:data:`segcore.data.DATASET_MAPPER_REGISTRY`.

Training: a clip of ``SAMPLING_FRAME_NUM`` frames, a reference frame drawn uniformly and the
others (with replacement) within ``SAMPLING_FRAME_RANGE`` frames of it, sorted in time (shuffled
with ``SAMPLING_FRAME_SHUFFLE``); the clip augmentations (:mod:`.clip_augmentation`); per frame an
:class:`~segcore.structures.Instances` holding every track seen in the clip, in the same order in
every frame: ``gt_ids`` (the annotation id, -1 in a frame where the track is absent or its mask is
empty), ``gt_classes`` (contiguous; ``num_classes`` where absent), ``gt_masks`` (BitMasks, empty
where absent) and ``gt_boxes`` (from the masks). Evaluation: every frame of the video, resized
for testing, no instances.
"""
from __future__ import annotations

import copy
import logging
import random
from typing import Dict, List, Sequence

import numpy as np
import torch

from segcore.config import configurable
from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import detection_utils as utils
from segcore.data.transforms import AugInput, TransformList
from segcore.structures import BitMasks, Instances

from .clip_augmentation import ClipAugmentations, build_clip_augmentations

__all__ = ["YTVISDatasetMapper", "sample_clip_frames"]


def sample_clip_frames(video_length: int, num_frames: int, frame_range: int, shuffle: bool = False) -> List[int]:
    """Frame indices of a training clip (the original's sampler).

    A reference frame r is drawn uniformly from the video; ``num_frames - 1`` more are drawn with
    replacement (NumPy's global generator) from the frames within ``frame_range`` of r, r itself
    excluded; the indices are sorted (then shuffled, Python's ``random``, with ``shuffle``). A
    one-frame video repeats its frame (the original cannot sample it).

    Args:
        video_length: frames in the video (>= 1). num_frames: frames per clip (>= 1).
        frame_range: the farthest distance (in frames) from the reference frame.

    Returns:
        ``num_frames`` frame indices in [0, video_length).

    Raises:
        ValueError: ``video_length`` or ``num_frames`` < 1.
    """
    if video_length < 1 or num_frames < 1:
        raise ValueError(f"sample_clip_frames: a clip of {num_frames} frames from a video of {video_length}")
    ref = random.randrange(video_length)
    start, end = max(0, ref - frame_range), min(video_length, ref + frame_range + 1)
    candidates = list(range(start, ref)) + list(range(ref + 1, end))
    others = np.random.choice(np.array(candidates), num_frames - 1).tolist() if candidates else [ref] * (num_frames - 1)
    selected = sorted(others + [ref])
    if shuffle:
        random.shuffle(selected)
    return selected


@DATASET_MAPPER_REGISTRY.register("ytvis")
class YTVISDatasetMapper:
    """A YouTube-VIS video record -> the video model's input (a clip in training, the video in eval).

    Args:
        is_train: training (a sampled, augmented clip with instances) or evaluation (every frame).
        augmentations: the :class:`ClipAugmentations` (``build_clip_augmentations(cfg, is_train)``).
        image_format: ``INPUT.FORMAT`` of the frames ("RGB" or "BGR").
        use_instance_mask: kept for the original's interface (masks are always read; the config's
            ``MODEL.MASK_ON``, which the original passes here, is accepted at False or True and read by
            nothing).
        sampling_frame_num, sampling_frame_range, sampling_frame_shuffle: the clip sampler
            (``INPUT.SAMPLING_FRAME_*``; :func:`sample_clip_frames`).
        num_classes: the class of a track in a frame where it is absent (the "no object" index K).

    ``__call__(record)``: a record of :func:`segcore.data.datasets.ytvis.load_ytvis_json`
    (``file_names``, ``height``, ``width``, ``length``, ``video_id``, ``annotations``: per frame a list
    of instance annotations with ``id``, ``category_id``, ``bbox`` and ``segmentation``) -> the
    record without ``annotations``, with ``file_names`` of the clip's frames, ``image``: a list of
    uint8 (3, H', W') tensors, and ``instances``: a list of per-frame Instances (training; empty in
    evaluation). Crowd annotations are skipped.

    Raises:
        ImageReadError, SizeMismatchError: a frame cannot be read or has another size than the video.
    """

    @configurable
    def __init__(self, is_train: bool = True, *, augmentations: ClipAugmentations, image_format: str,
                 use_instance_mask: bool = False, sampling_frame_num: int = 2, sampling_frame_range: int = 5,
                 sampling_frame_shuffle: bool = False, num_classes: int = 40):
        self.is_train = is_train
        self.augmentations = augmentations
        self.image_format = image_format
        self.use_instance_mask = use_instance_mask
        self.sampling_frame_num = sampling_frame_num
        self.sampling_frame_range = sampling_frame_range
        self.sampling_frame_shuffle = sampling_frame_shuffle
        self.num_classes = num_classes
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info(f"[YTVISDatasetMapper] Augmentations used in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        """Augmentations from ``INPUT`` (:func:`build_clip_augmentations`), the clip sampler from
        ``INPUT.SAMPLING_FRAME_*``, ``num_classes = MODEL.SEM_SEG_HEAD.NUM_CLASSES``."""
        return {
            "is_train": is_train,
            "augmentations": build_clip_augmentations(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "sampling_frame_num": cfg.INPUT.SAMPLING_FRAME_NUM,
            "sampling_frame_range": cfg.INPUT.SAMPLING_FRAME_RANGE,
            "sampling_frame_shuffle": cfg.INPUT.SAMPLING_FRAME_SHUFFLE,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        record = dict(dataset_dict)  # the per-frame annotations are copied when used
        video_annos = record.pop("annotations", None)
        file_names = record.pop("file_names")
        length = record.get("length", len(file_names))
        if self.is_train:
            selected = sample_clip_frames(length, self.sampling_frame_num, self.sampling_frame_range,
                                          self.sampling_frame_shuffle)
        else:
            selected = list(range(length))
        track_ids: List[int] = []
        if self.is_train and video_annos is not None:
            track_ids = sorted({anno["id"] for f in selected for anno in video_annos[f] if anno.get("iscrowd", 0) == 0})
        clip = self.augmentations.new_clip()
        record["image"], record["instances"], record["file_names"] = [], [], []
        for frame in selected:
            file_name = file_names[frame]
            record["file_names"].append(file_name)
            image = utils.read_image(file_name, format=self.image_format)
            utils.check_image_size({"file_name": file_name, "height": record["height"], "width": record["width"]},
                                   image)
            aug_input = AugInput(image)
            transforms = clip(aug_input)
            image = aug_input.image
            record["image"].append(torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))))
            if self.is_train and video_annos is not None:
                record["instances"].append(self.frame_instances(video_annos[frame], track_ids, transforms,
                                                                image.shape[:2]))
        return record

    def frame_instances(self, annotations: Sequence[dict], track_ids: Sequence[int], transforms: TransformList,
                        image_size) -> Instances:
        """One frame's Instances over the clip's tracks ``track_ids`` (see the class docstring)."""
        h, w = int(image_size[0]), int(image_size[1])
        by_id: Dict[int, dict] = {}
        for anno in annotations:
            if anno.get("iscrowd", 0) == 0:
                by_id[anno["id"]] = utils.transform_instance_annotations(copy.deepcopy(anno), transforms, (h, w))
        masks = torch.zeros((len(track_ids), h, w), dtype=torch.bool)
        classes = torch.full((len(track_ids),), self.num_classes, dtype=torch.int64)
        ids = torch.full((len(track_ids),), -1, dtype=torch.int64)
        for i, track in enumerate(track_ids):
            anno = by_id.get(track)
            if anno is None:
                continue
            masks[i] = torch.from_numpy(np.ascontiguousarray(
                utils.segmentation_to_bitmask(anno["segmentation"], h, w, f" (track {track})"))).bool()
            classes[i] = int(anno["category_id"])
            ids[i] = track
        instances = Instances((h, w))
        instances.gt_classes = classes
        instances.gt_masks = BitMasks(masks)
        instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
        # a track whose mask is empty here (absent, or cropped / rotated out) is absent from the frame
        empty = ~(instances.gt_boxes.nonempty() & instances.gt_masks.nonempty())
        ids[empty] = -1
        instances.gt_ids = ids
        return instances
