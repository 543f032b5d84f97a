"""The plain post-processing, written as the original implementations compute it: the oracle.

``mask_former.inference`` (the post-processor the models run, its block-by-block outputs and the
full-resolution functions) is tested against these (``tests/mask_former/inference/``): it returns
the same outputs, up to float rounding in sums.

- :func:`semantic_inference_reference`: MaskFormer Sec. 3.4's einsum over full-resolution masks;
- :func:`panoptic_inference_reference`: the loop over queries of MaskFormer Sec. 3.4 / Mask2Former's
  ``panoptic_inference``, one full-resolution pass per kept query;
- :func:`instance_inference_reference`: Mask2Former's ``instance_inference`` (one full-resolution
  mask gathered per selected (query, class) pair);
- :func:`postprocess_reference`: the original order of the per-image steps (masks resized to the
  padded input, cropped and resized to the output size, each task's inference on its own
  probabilities).
"""
from __future__ import annotations

from typing import Collection, Dict, List, Optional, Tuple

import torch
from torch.nn import functional as F

from segcore.modeling import sem_seg_postprocess
from segcore.structures import Instances

from mask_former.inference import instances_from_masks, topk_candidates

__all__ = ["instance_inference_reference", "panoptic_inference_reference", "postprocess_reference",
           "semantic_inference_reference"]


def semantic_inference_reference(mask_cls: torch.Tensor, mask_pred: torch.Tensor) -> torch.Tensor:
    """The original's semantic inference: ``einsum("qc,qhw->chw", softmax(mask_cls)[..., :-1], sigmoid(mask_pred))``."""
    return torch.einsum("qc,qhw->chw", F.softmax(mask_cls, dim=-1)[..., :-1], mask_pred.sigmoid())


def panoptic_inference_reference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, thing_classes: Collection[int],
                                 object_mask_threshold: float, overlap_threshold: float,
                                 mask_must_be_confident: bool = False) -> Tuple[torch.Tensor, List[Dict]]:
    """Panoptic inference with one loop step per kept query (the original code).

    Arguments and result as :func:`mask_former.inference.panoptic_inference` (without ``mask_prob``).
    """
    num_classes = mask_cls.shape[-1] - 1
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    mask_prob = mask_pred.sigmoid()
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], mask_prob[keep]
    h, w = mask_pred.shape[-2:]
    panoptic_seg = torch.zeros((h, w), dtype=torch.int32, device=mask_pred.device)
    segments_info: List[Dict] = []
    if cur_masks.shape[0] == 0:
        return panoptic_seg, segments_info

    cur_mask_ids = (cur_scores.view(-1, 1, 1) * cur_masks).argmax(0)
    things = set(int(c) for c in thing_classes)
    stuff_segment_ids: Dict[int, int] = {}
    current_segment_id = 0
    for k in range(cur_classes.shape[0]):
        pred_class = int(cur_classes[k].item())
        isthing = pred_class in things
        won = cur_mask_ids == k
        confident = cur_masks[k] >= 0.5
        mask = won & confident if mask_must_be_confident else won
        mask_area = int(won.sum().item())
        original_area = int(confident.sum().item())
        if mask_area == 0 or original_area == 0 or not bool(mask.any()):
            continue
        if mask_area / original_area < overlap_threshold:
            continue
        if not isthing and pred_class in stuff_segment_ids:
            panoptic_seg[mask] = stuff_segment_ids[pred_class]
            continue
        current_segment_id += 1
        if not isthing:
            stuff_segment_ids[pred_class] = current_segment_id
        panoptic_seg[mask] = current_segment_id
        segments_info.append({"id": current_segment_id, "isthing": bool(isthing), "category_id": pred_class})
    return panoptic_seg, segments_info


def instance_inference_reference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, *, topk: int,
                                 thing_classes: Optional[Collection[int]] = None) -> Instances:
    """Instance inference gathering one full-resolution mask per selected (query, class) pair
    (the original code). Arguments, result and errors as :func:`mask_former.inference.instance_inference`."""
    if mask_cls.shape[0] != mask_pred.shape[0]:
        raise ValueError(f"instance_inference: {mask_cls.shape[0]} class predictions but {mask_pred.shape[0]} masks")
    scores_per_image, labels_per_image, query_per_image = topk_candidates(mask_cls, topk, thing_classes)
    mask_pred = mask_pred[query_per_image]
    pred_masks = mask_pred > 0
    binary = pred_masks.flatten(1).to(mask_pred.dtype)
    mask_scores = (mask_pred.sigmoid().flatten(1) * binary).sum(1) / (binary.sum(1) + 1e-6)
    return instances_from_masks(tuple(mask_pred.shape[-2:]), pred_masks, scores_per_image * mask_scores,
                                labels_per_image)


def postprocess_reference(mask_cls: torch.Tensor, mask_pred: torch.Tensor, image_size: Tuple[int, int],
                          height: int, width: int, *, semantic_on: bool, panoptic_on: bool, instance_on: bool,
                          resize_before_inference: bool, thing_classes: Collection[int],
                          object_mask_threshold: float, overlap_threshold: float,
                          mask_must_be_confident: bool, topk: int) -> dict:
    """One image's outputs in the original order of steps (``MaskFormer.inference`` of the original code).

    Args:
        mask_cls: (N, K+1) class logits. mask_pred: (N, Hpad, Wpad) mask logits at the padded input
            size. image_size: (h, w) of the image inside the padding. height, width: output size.
        semantic_on, panoptic_on, instance_on: the outputs to return.
        resize_before_inference: crop and resize the masks to the output size first (needed by
            panoptic and instance inference); otherwise semantic inference runs at the padded size
            and its result is cropped and resized.
        thing_classes, object_mask_threshold, overlap_threshold, mask_must_be_confident: panoptic
            inference's (thing classes also restrict the instances when panoptic inference is on).
        topk: instances kept (``TEST.DETECTIONS_PER_IMAGE``).

    Returns:
        ``{"sem_seg", "panoptic_seg", "instances"}`` as enabled.
    """
    result: dict = {}
    if resize_before_inference:
        mask_pred = sem_seg_postprocess(mask_pred, image_size, height, width)
        mask_cls = mask_cls.to(mask_pred)
    if semantic_on:
        r = semantic_inference_reference(mask_cls, mask_pred)
        if not resize_before_inference:
            r = sem_seg_postprocess(r, image_size, height, width)
        result["sem_seg"] = r
    if panoptic_on:
        result["panoptic_seg"] = panoptic_inference_reference(
            mask_cls, mask_pred, thing_classes=thing_classes, object_mask_threshold=object_mask_threshold,
            overlap_threshold=overlap_threshold, mask_must_be_confident=mask_must_be_confident)
    if instance_on:
        result["instances"] = instance_inference_reference(
            mask_cls, mask_pred, topk=topk, thing_classes=thing_classes if panoptic_on else None)
    return result
