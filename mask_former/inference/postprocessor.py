"""What runs on one image's predictions at inference: the MaskFormer / Mask2Former post-processing.

:class:`MaskFormerPostProcessor` turns the N (class, mask) predictions of one image into its
outputs, in three steps that every output shares:

1. the masks reach the output resolution block by block of rows, resized as the original
   implementations resize them (bilinear to the padded input, crop, bilinear to the output size;
   :func:`~mask_former.inference.blocks.mask_logit_blocks`);
2. each requested output consumes every block: :class:`~.semantic.SemanticScores` (MaskFormer
   Sec. 3.4, semantic), :class:`~.panoptic.PanopticSegments` (Sec. 3.4, general inference) and
   :class:`~.instance.InstanceMasks` (Mask2Former's instance inference);
3. with ``masks_at_output_size`` False (semantic-only models: the original's
   ``SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE`` off), the semantic scores are computed at the
   image's size and then resized to the output size, as the original does.

The :class:`~mask_former.MaskFormer` meta-architecture calls it for each image; a model that needs
other outputs subclasses it (override :meth:`MaskFormerPostProcessor.outputs`) and returns it from
``MaskFormer.build_postprocessor``, or passes its own to the constructor.
"""
from __future__ import annotations

from typing import Collection, Dict, Sequence, Tuple

import torch

from segcore.config import configurable

from .blocks import MaskOutput, crop_and_resize, mask_logit_blocks, run_outputs
from .instance import InstanceMasks
from .panoptic import PanopticSegments
from .semantic import SemanticScores

__all__ = ["MaskFormerPostProcessor"]


class MaskFormerPostProcessor:
    """One image's (class, mask) predictions -> its semantic, panoptic and instance outputs.

    Args:
        semantic_on, panoptic_on, instance_on: which outputs to return (at least one).
        masks_at_output_size: resize the masks to the output size before the inference steps
            (required by panoptic and instance inference); otherwise (semantic only) the scores
            are computed at the image size and resized.
        thing_classes: contiguous ids of the dataset's thing classes (panoptic segments' ``isthing``;
            with panoptic inference on, the instances keep only these).
        object_mask_threshold, overlap_threshold: panoptic inference's (MaskFormer Sec. 3.4).
        panoptic_mask_must_be_confident: a pixel joins a panoptic segment only where that segment's
            mask probability is >= 0.5 (Mask2Former's convention; MaskFormer's is False).
        topk: instances kept per image (``TEST.DETECTIONS_PER_IMAGE``).

    Raises:
        ValueError: no output enabled, or panoptic / instance inference without
            ``masks_at_output_size``.
    """

    @configurable
    def __init__(self, *, semantic_on: bool = True, panoptic_on: bool = False, instance_on: bool = False,
                 masks_at_output_size: bool = False, thing_classes: Collection[int] = (),
                 object_mask_threshold: float = 0.8, overlap_threshold: float = 0.8,
                 panoptic_mask_must_be_confident: bool = False, topk: int = 100):
        if not (semantic_on or panoptic_on or instance_on):
            raise ValueError("MaskFormer: no output enabled; set one of MODEL.MASK_FORMER.TEST.SEMANTIC_ON, "
                             "PANOPTIC_ON, INSTANCE_ON")
        if not masks_at_output_size and (panoptic_on or instance_on):
            raise ValueError("MaskFormer: panoptic and instance inference need the masks at the output size "
                             "(sem_seg_postprocess_before_inference=True)")
        self.semantic_on, self.panoptic_on, self.instance_on = semantic_on, panoptic_on, instance_on
        self.masks_at_output_size = masks_at_output_size
        self.thing_classes = list(thing_classes)
        self.object_mask_threshold, self.overlap_threshold = object_mask_threshold, overlap_threshold
        self.panoptic_mask_must_be_confident = panoptic_mask_must_be_confident
        self.topk = topk

    @classmethod
    def from_config(cls, cfg, *, thing_classes: Collection[int] = (),
                    panoptic_mask_must_be_confident: bool = False) -> dict:
        """``MODEL.MASK_FORMER.TEST`` and ``TEST.DETECTIONS_PER_IMAGE``; the dataset's thing classes
        and the decoder's panoptic convention come from the caller."""
        t = cfg.MODEL.MASK_FORMER.TEST
        return {
            "semantic_on": t.SEMANTIC_ON,
            "panoptic_on": t.PANOPTIC_ON,
            "instance_on": t.INSTANCE_ON,
            "masks_at_output_size": t.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE or t.PANOPTIC_ON or t.INSTANCE_ON,
            "thing_classes": thing_classes,
            "object_mask_threshold": t.OBJECT_MASK_THRESHOLD,
            "overlap_threshold": t.OVERLAP_THRESHOLD,
            "panoptic_mask_must_be_confident": panoptic_mask_must_be_confident,
            "topk": cfg.TEST.DETECTIONS_PER_IMAGE,
        }

    def outputs(self, mask_cls: torch.Tensor, size: Tuple[int, int]) -> Dict[str, MaskOutput]:
        """The enabled outputs of one image, by result key, each to be fed the mask blocks.

        Args:
            mask_cls: (N, K+1) class logits. size: (H, W) of the masks they will see.
        """
        outputs: Dict[str, MaskOutput] = {}
        if self.semantic_on:
            outputs["sem_seg"] = SemanticScores(mask_cls, size)
        if self.panoptic_on:
            outputs["panoptic_seg"] = PanopticSegments(
                mask_cls, size, thing_classes=self.thing_classes, object_mask_threshold=self.object_mask_threshold,
                overlap_threshold=self.overlap_threshold, mask_must_be_confident=self.panoptic_mask_must_be_confident)
        if self.instance_on:
            outputs["instances"] = InstanceMasks(mask_cls, size, topk=self.topk,
                                                 thing_classes=self.thing_classes if self.panoptic_on else None)
        return outputs

    def __call__(self, mask_cls: torch.Tensor, mask_logits: torch.Tensor, padded_size: Sequence[int],
                 image_size: Sequence[int], output_size: Sequence[int]) -> dict:
        """The outputs of one image.

        Args:
            mask_cls: float (N, K+1) class logits (the last class is "no object").
            mask_logits: float (N, h, w) mask logits at the mask features' resolution.
            padded_size: (Hp, Wp) of the padded input batch. image_size: (H, W) of this image inside
                the padding. output_size: (height, width) to return (the input's original size).

        Returns:
            ``{"sem_seg": (K, height, width) float, "panoptic_seg": (int32 (height, width),
            segments_info), "instances": Instances}``, the enabled ones.
        """
        image_size = (int(image_size[0]), int(image_size[1]))
        output_size = (int(output_size[0]), int(output_size[1]))
        size = output_size if self.masks_at_output_size else image_size
        outputs = self.outputs(mask_cls, size)
        results = run_outputs(list(outputs.values()), mask_logit_blocks(mask_logits, padded_size, image_size, size))
        result = dict(zip(outputs, results))
        if "sem_seg" in result and size != output_size:  # scores computed at the image size
            result["sem_seg"] = crop_and_resize(result["sem_seg"], image_size, *output_size)
        return result
