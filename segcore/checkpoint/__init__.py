"""Checkpoints: atomic saving, safe loading of ``.pth`` and Detectron2 ``.pkl`` files, name matching."""
from .c2_model_loading import AmbiguousMatchError, align_and_update_state_dicts, convert_basic_c2_names
from .checkpointer import (
    CheckpointReadError,
    Checkpointer,
    DetectionCheckpointer,
    PeriodicCheckpointer,
    UnsafeCheckpointError,
    format_incompatible_keys,
)
from .safe_pickle import UnsafePickleError, safe_load

__all__ = ["AmbiguousMatchError", "CheckpointReadError", "Checkpointer", "DetectionCheckpointer",
           "PeriodicCheckpointer", "UnsafeCheckpointError", "UnsafePickleError", "align_and_update_state_dicts",
           "convert_basic_c2_names", "format_incompatible_keys", "safe_load"]
