"""Checkpoints: atomic saving, safe loading of ``.pth`` and Detectron2 ``.pkl`` files, name matching."""
from .c2_model_loading import AmbiguousMatchError, align_and_update_state_dicts, convert_basic_c2_names
from .checkpointer import Checkpointer, DetectionCheckpointer, PeriodicCheckpointer, format_incompatible_keys
from .safe_pickle import UnsafePickleError, safe_load

__all__ = ["AmbiguousMatchError", "Checkpointer", "DetectionCheckpointer", "PeriodicCheckpointer",
           "UnsafePickleError", "align_and_update_state_dicts", "convert_basic_c2_names",
           "format_incompatible_keys", "safe_load"]
