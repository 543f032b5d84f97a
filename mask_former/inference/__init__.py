"""Turning per-query (class, mask) predictions into semantic, panoptic and instance outputs.

:class:`MaskFormerPostProcessor` (:mod:`.postprocessor`) is what the models run on each image; the
outputs it builds are in :mod:`.semantic`, :mod:`.panoptic` and :mod:`.instance`, each also as a
function of full-resolution masks (``semantic_inference``, ...); :mod:`.blocks` makes the
full-resolution masks block by block. The original implementations' order of work, which these
are tested against, is in ``tests/mask_former/inference/reference.py``.
"""
from .blocks import MaskBlock, MaskOutput, crop_and_resize, mask_logit_blocks, run_outputs
from .instance import InstanceMasks, instance_inference, topk_candidates
from .instances import instances_from_masks
from .panoptic import PanopticSegments, panoptic_inference, panoptic_segments
from .postprocessor import MaskFormerPostProcessor
from .semantic import SemanticScores, semantic_inference

__all__ = ["InstanceMasks", "MaskBlock", "MaskFormerPostProcessor", "MaskOutput", "PanopticSegments",
           "SemanticScores", "crop_and_resize", "instance_inference", "instances_from_masks", "mask_logit_blocks",
           "panoptic_inference", "panoptic_segments", "run_outputs", "semantic_inference", "topk_candidates"]
