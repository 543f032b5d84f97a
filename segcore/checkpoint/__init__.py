"""Checkpoints: atomic saving, safe loading of ``.pth`` and Detectron2 ``.pkl`` files."""
from .checkpointer import Checkpointer, DetectionCheckpointer, PeriodicCheckpointer, format_incompatible_keys
from .safe_pickle import UnsafePickleError, safe_load

__all__ = ["Checkpointer", "DetectionCheckpointer", "PeriodicCheckpointer", "UnsafePickleError",
           "format_incompatible_keys", "safe_load"]
