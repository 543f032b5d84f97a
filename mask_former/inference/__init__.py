"""Turning per-query (class, mask) predictions into semantic, panoptic and instance outputs."""
from .instances import instances_from_masks
from .panoptic import panoptic_inference
from .semantic import semantic_inference

__all__ = ["instances_from_masks", "panoptic_inference", "semantic_inference"]
