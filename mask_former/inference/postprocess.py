"""One image's outputs from its low-resolution masks, and cropping / resizing without needless work.

:func:`inference_from_low_resolution` computes the semantic, panoptic and instance outputs of one
image in one pass over blocks of output rows, from the masks at the mask features' resolution:
each block of the full-resolution logits is interpolated, turned into probabilities and consumed
by every output while it is in the CPU caches. The full-resolution (N, H, W) logits and
probabilities, hundreds of MB for a COCO image, are never stored; what is stored is what the
outputs are made of (the semantic scores, the instance masks, the panoptic winner map). The
outputs equal those of the per-output functions (:func:`~mask_former.inference.semantic_inference`,
:func:`~mask_former.inference.panoptic_inference`, :func:`~mask_former.inference.instance_inference`)
applied to the resized masks, up to float rounding in the instances' mask scores (sums over pixels
taken block by block).
"""
from __future__ import annotations

from typing import Collection, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

from segcore.modeling import sem_seg_postprocess
from segcore.structures import Boxes, Instances, boxes_from_occupancy

from .instance import topk_candidates
from .panoptic import panoptic_segments

__all__ = ["crop_and_resize", "inference_from_low_resolution", "supports_low_resolution_inference"]

#: floats of one block of full-resolution mask logits (about 4 MB: the block stays in the CPU caches)
_BLOCK_ELEMENTS = 1 << 20


def crop_and_resize(result: torch.Tensor, image_size: Tuple[int, int], output_height: int,
                    output_width: int) -> torch.Tensor:
    """:func:`segcore.modeling.sem_seg_postprocess` (crop the padding off, resize bilinearly to the
    output size), returning the crop itself when the output size is the image's own.

    A bilinear resize to the same size copies its input, so the values are those of
    ``sem_seg_postprocess``; the full-resolution pass is skipped (the usual case: no test-time
    resize, or an input given at its original size).

    Args:
        result: (C, Hpad, Wpad) float prediction at the padded input resolution.
        image_size: (h, w) of the image inside the padding, pixels.
        output_height, output_width: the size to return.

    Returns:
        (C, output_height, output_width); a view of ``result`` when no resize is needed.
    """
    h, w = int(image_size[0]), int(image_size[1])
    if (int(output_height), int(output_width)) == (h, w):
        return result[:, :h, :w]
    return sem_seg_postprocess(result, image_size, output_height, output_width)


def _integer_power_of_two_scale(small: int, large: int) -> int:
    """``large // small`` when it is a power of two (1, 2, 4, ...) dividing exactly, else 0."""
    if small <= 0 or large % small:
        return 0
    scale = large // small
    return scale if scale & (scale - 1) == 0 else 0


def supports_low_resolution_inference(mask_size: Sequence[int], padded_size: Sequence[int],
                                      image_size: Sequence[int], output_size: Sequence[int]) -> bool:
    """Whether :func:`inference_from_low_resolution` reproduces the resized masks exactly here: the
    padded input is the same power-of-two multiple (1, 2, 4, ...) of the masks' size in both
    directions, and the output is the image's own size (no resize after cropping)."""
    scale = _integer_power_of_two_scale(int(mask_size[0]), int(padded_size[0]))
    return (bool(scale) and _integer_power_of_two_scale(int(mask_size[1]), int(padded_size[1])) == scale
            and tuple(int(s) for s in output_size) == tuple(int(s) for s in image_size))


def _blocks(height: int, scale: int, rows: int, low_height: int):
    """(r0, r1, first, last): output rows r0..r1-1 and the low-resolution rows first..last they read
    (bilinear, align_corners=False: source row (r + 0.5) / scale - 0.5)."""
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        first = max(0, (2 * r0 + 1 - scale) // (2 * scale))
        last = min(low_height - 1, (2 * (r1 - 1) + 1 - scale) // (2 * scale) + 1)
        yield r0, r1, first, last


def _count(mask: torch.Tensor) -> torch.Tensor:
    """(U,) int64: the True elements of each (rows, W) map of a (U, rows, W) bool tensor."""
    return mask.flatten(1).sum(1)


def inference_from_low_resolution(mask_cls: torch.Tensor, mask_logits: torch.Tensor, padded_size: Sequence[int],
                                  image_size: Sequence[int], *, semantic: bool, panoptic: bool, instance: bool,
                                  thing_classes: Collection[int] = (), object_mask_threshold: float = 0.0,
                                  overlap_threshold: float = 0.0, mask_must_be_confident: bool = False,
                                  topk: int = 100, instance_thing_classes: Optional[Collection[int]] = None) -> dict:
    """The requested outputs of one image, computed block by block from its low-resolution masks.

    Equals, for ``masks = F.interpolate(mask_logits[None], padded_size, mode="bilinear")[0][:, :H, :W]``:
    ``semantic_inference(mask_cls, masks)``, ``panoptic_inference(mask_cls, masks, ...)`` and
    ``instance_inference(mask_cls, masks, ...)`` (see the module docstring). Requires
    :func:`supports_low_resolution_inference` (the caller checks it).

    Args:
        mask_cls: (N, K+1) class logits. mask_logits: (N, h, w) mask logits at the mask features'
            resolution. padded_size: (Hp, Wp) of the padded input. image_size: (H, W) of the image
            inside the padding (also the output size).
        semantic, panoptic, instance: the outputs to compute.
        thing_classes, object_mask_threshold, overlap_threshold, mask_must_be_confident: panoptic
            inference's settings (:func:`~mask_former.inference.panoptic_inference`).
        topk, instance_thing_classes: instance inference's settings (``topk`` and ``thing_classes``
            of :func:`~mask_former.inference.instance_inference`).

    Returns:
        ``{"sem_seg": (K, H, W) float, "panoptic_seg": (int32 (H, W), segments_info),
        "instances": Instances}``, the requested ones.

    Raises:
        ValueError: the sizes are not supported (see :func:`supports_low_resolution_inference`), or
            ``topk`` < 1 with instances requested.
    """
    hp, wp = int(padded_size[0]), int(padded_size[1])
    height, width = int(image_size[0]), int(image_size[1])
    num_queries, h, w = mask_logits.shape
    if not supports_low_resolution_inference((h, w), (hp, wp), (height, width), (height, width)):
        raise ValueError(f"inference_from_low_resolution: padded size {(hp, wp)} is not a power-of-two multiple "
                         f"of the masks' {(h, w)}")
    if instance and topk < 1:
        raise ValueError(f"instance_inference: topk (TEST.DETECTIONS_PER_IMAGE) must be >= 1, got {topk}")
    scale = hp // h
    device, dtype = mask_logits.device, mask_logits.dtype
    num_classes = mask_cls.shape[-1] - 1
    probs = F.softmax(mask_cls, dim=-1)

    # the decisions made from the classes alone
    class_prob = probs[:, :-1].t() if semantic else None  # (K, N)
    sem_seg = torch.empty((num_classes, height, width), dtype=dtype, device=device) if semantic else None
    sem_seg_rows = sem_seg.view(num_classes, height * width) if semantic else None
    kept = None
    if panoptic:
        scores, labels = probs.max(-1)
        kept = (labels.ne(num_classes) & (scores > object_mask_threshold)).nonzero().flatten()
        if kept.numel():
            kept_scores = scores[kept].view(-1, 1, 1)
            winner = torch.empty((height, width), dtype=torch.int64, device=device)
            original_area = torch.zeros(kept.numel(), dtype=torch.int64, device=device)
            assigned = torch.empty((height, width), dtype=torch.bool, device=device) if mask_must_be_confident \
                else None
    if instance:
        flat_scores, instance_labels, instance_queries = topk_candidates(mask_cls, topk, instance_thing_classes)
        queries, inverse = torch.unique(instance_queries, return_inverse=True)
        instance_masks = torch.empty((inverse.numel(), height, width), dtype=torch.bool, device=device)
        prob_sums = torch.zeros(queries.numel(), dtype=torch.float64, device=device)
        areas = torch.zeros(queries.numel(), dtype=torch.int64, device=device)
        rows_any = torch.empty((queries.numel(), height), dtype=torch.bool, device=device)
        cols_any = torch.zeros((queries.numel(), width), dtype=torch.bool, device=device)

    rows = max(scale, _BLOCK_ELEMENTS // max(1, num_queries * wp) // scale * scale)
    for r0, r1, first, last in _blocks(height, scale, rows, h):
        slab = F.interpolate(mask_logits[None, :, first:last + 1], scale_factor=float(scale), mode="bilinear",
                             align_corners=False, recompute_scale_factor=False)[0]
        offset = first * scale
        logits = slab[:, r0 - offset:r1 - offset, :width]  # (N, rows, W), the image part
        prob = logits.sigmoid() if semantic or panoptic else None
        if semantic:
            # written in place: the block's columns of the (K, H * W) scores
            torch.mm(class_prob, prob.reshape(num_queries, -1), out=sem_seg_rows[:, r0 * width:r1 * width])
        if panoptic and kept.numel():
            kept_prob = prob.index_select(0, kept)
            block_winner = (kept_scores * kept_prob).argmax(0)
            winner[r0:r1] = block_winner
            original_area += _count(kept_prob >= 0.5)
            if assigned is not None:
                assigned[r0:r1] = kept_prob.gather(0, block_winner.unsqueeze(0)).squeeze(0) >= 0.5
        if instance and queries.numel():
            query_logits = logits.index_select(0, queries)  # (U, rows, W)
            binary = query_logits > 0
            instance_masks[:, r0:r1] = binary.index_select(0, inverse)
            # float32 sums per block, accumulated in float64
            query_prob = query_logits.sigmoid() if prob is None else prob.index_select(0, queries)
            prob_sums += (query_prob * binary).flatten(1).sum(1)
            areas += _count(binary)
            # "a pixel of the row / column is in the mask": the largest logit is > 0 (a float
            # reduction, much faster than any() over bools)
            rows_any[:, r0:r1] = query_logits.amax(dim=2) > 0
            cols_any |= query_logits.amax(dim=1) > 0

    result: dict = {}
    if semantic:
        result["sem_seg"] = sem_seg
    if panoptic:
        panoptic_seg = torch.zeros((height, width), dtype=torch.int32, device=device)
        segments_info: list = []
        if kept.numel():
            won_area = torch.bincount(winner.flatten(), minlength=kept.numel())
            assigned_area = won_area if assigned is None else torch.bincount(winner[assigned], minlength=kept.numel())
            segment_of_query, segments_info = panoptic_segments(
                labels[kept].tolist(), won_area.tolist(), original_area.tolist(), assigned_area.tolist(),
                thing_classes=thing_classes, overlap_threshold=overlap_threshold)
            if segments_info:
                panoptic_seg = torch.tensor(segment_of_query, dtype=torch.int32, device=device)[winner]
                if assigned is not None:
                    panoptic_seg.masked_fill_(~assigned, 0)
        result["panoptic_seg"] = (panoptic_seg, segments_info)
    if instance:
        mask_scores = (prob_sums / (areas.to(torch.float64) + 1e-6)).to(dtype)
        instances = Instances((height, width))
        instances.pred_masks = instance_masks
        instances.pred_boxes = Boxes(boxes_from_occupancy(cols_any, rows_any)[inverse])
        instances.scores = flat_scores * mask_scores[inverse]
        instances.pred_classes = instance_labels.to(torch.int64)
        result["instances"] = instances
    return result
