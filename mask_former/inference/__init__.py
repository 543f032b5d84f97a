"""Turning per-query (class, mask) predictions into semantic, panoptic and instance outputs.

The functions here are the fast paths the models use; :mod:`.reference` holds the plain
implementations (the original code's order of work) that they are tested against.
"""
from .instance import instance_inference
from .instances import instances_from_masks
from .panoptic import panoptic_inference
from .postprocess import crop_and_resize, inference_from_low_resolution, supports_low_resolution_inference
from .semantic import semantic_inference

__all__ = ["crop_and_resize", "inference_from_low_resolution", "instance_inference", "instances_from_masks", "panoptic_inference", "semantic_inference",
           "supports_low_resolution_inference"]
