"""What can be wrong with a weight file, each as its own error type naming the file.

- :class:`CheckpointReadError`: the file cannot be read as a checkpoint (not one at all,
  truncated, corrupt, not a dict of weights);
- :class:`UnsafeCheckpointError`: it can be read, but refers to objects a weight file may not
  hold (code, arbitrary classes) and is refused without running anything;
- :class:`NonFiniteWeightsError`: it holds NaN or infinite weights;
- :class:`IncompleteWeightsError`: it does not provide every weight of the model (missing or
  shape-mismatched entries), where the caller needs a complete model (evaluation, inference).

Every class keeps its constructor arguments through pickling, so an error raised in a worker
process reaches the launcher unchanged.
"""
from __future__ import annotations

from typing import Sequence

from .safe_pickle import UnsafePickleError

__all__ = ["CheckpointReadError", "IncompleteWeightsError", "NonFiniteWeightsError", "UnsafeCheckpointError",
           "summarize_names"]


def summarize_names(names: Sequence[str], limit: int = 10) -> str:
    """``"a, b, c"``, or the first ``limit`` names and ``"... (N more)"``."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class CheckpointReadError(ValueError):
    """A checkpoint or weight file could not be read: not a checkpoint at all, truncated,
    corrupt, or not holding a dict of weights.

    Attributes:
        path: the file.
        expected: the format the file was read as (from its suffix).
        reason: what went wrong.
    """

    def __init__(self, path: str, expected: str, reason: str):
        self.path = path
        self.expected = expected
        self.reason = reason
        super().__init__(f"Cannot read the checkpoint {path}: {reason}. Expected {expected}.")

    def __reduce__(self):  # keep the three arguments through pickling (multiprocessing)
        return type(self), (self.path, self.expected, self.reason)


class UnsafeCheckpointError(CheckpointReadError, UnsafePickleError):
    """A checkpoint refers to objects a weight file may not hold (code, arbitrary classes);
    refused without running anything. Also an :class:`~.safe_pickle.UnsafePickleError`.
    A file that is merely corrupt is a :class:`CheckpointReadError`, not this."""


class NonFiniteWeightsError(ValueError):
    """A weight file holds floating-point tensors with NaN or infinite values.

    Attributes:
        path: the file.
        entries: one ``"name (n NaN, m inf of total)"`` description per such tensor.
        num_float: how many floating-point tensors the file holds.
    """

    def __init__(self, path: str, entries: Sequence[str], num_float: int):
        self.path = path
        self.entries = list(entries)
        self.num_float = num_float
        super().__init__(
            f"The weights in {path} are not finite: {len(self.entries)} of its {num_float} floating-point tensors "
            f"hold NaN or infinite values: {summarize_names(self.entries)}. A model with these weights gives "
            "meaningless outputs (set MODEL.ALLOW_NON_FINITE_WEIGHTS True to load them anyway, for debugging)."
        )

    def __reduce__(self):
        return type(self), (self.path, self.entries, self.num_float)


class IncompleteWeightsError(RuntimeError):
    """A model that must be complete (evaluation, inference) did not get all of its weights.

    Attributes:
        path: the weight file, or "" when none was given.
        num_loaded: model weights loaded from the file.
        num_model: the model's weights (its state-dict entries).
        report: what is missing or mismatched (:func:`~.report.format_incompatible_keys`).
    """

    def __init__(self, path: str, num_loaded: int, num_model: int, report: str):
        self.path = path
        self.num_loaded = num_loaded
        self.num_model = num_model
        self.report = report
        if path:
            what = (f"Only {num_loaded} of the model's {num_model} weights were loaded from {path}; a model "
                    f"missing the others would give meaningless outputs:\n{report}\n")
        else:
            what = ("No weights were given (MODEL.WEIGHTS is empty): the model would run with its random "
                    "initialization. Set MODEL.WEIGHTS to a trained model's file. ")
        super().__init__(what + "Set MODEL.ALLOW_PARTIAL_WEIGHTS True to run it anyway.")

    def __reduce__(self):
        return type(self), (self.path, self.num_loaded, self.num_model, self.report)
