"""Turning per-query (class, mask) predictions into semantic, panoptic and instance outputs."""
from .instance import instance_inference
from .instances import instances_from_masks
from .panoptic import panoptic_inference
from .semantic import semantic_inference

__all__ = ["instance_inference", "instances_from_masks", "panoptic_inference", "semantic_inference"]
