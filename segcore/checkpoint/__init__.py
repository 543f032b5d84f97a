"""Checkpoints: atomic saving, safe loading of ``.pth`` and Detectron2 ``.pkl`` files, name matching,
and the errors of weight files that cannot be used (unreadable, unsafe, non-finite, incomplete)."""
from .atomic import atomic_write
from .c2_model_loading import AmbiguousMatchError, align_and_update_state_dicts, convert_basic_c2_names
from .checkpointer import Checkpointer, DetectionCheckpointer, PeriodicCheckpointer
from .errors import CheckpointReadError, IncompleteWeightsError, NonFiniteWeightsError, UnsafeCheckpointError
from .report import format_incompatible_keys, non_finite_entries
from .safe_pickle import UnsafePickleError, safe_load

__all__ = ["AmbiguousMatchError", "CheckpointReadError", "Checkpointer", "DetectionCheckpointer",
           "IncompleteWeightsError", "NonFiniteWeightsError", "PeriodicCheckpointer", "UnsafeCheckpointError",
           "UnsafePickleError", "align_and_update_state_dicts", "atomic_write", "convert_basic_c2_names",
           "format_incompatible_keys", "non_finite_entries", "safe_load"]
