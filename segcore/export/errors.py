"""The errors of exporting a model and of running an exported one, each naming what is wrong."""
from __future__ import annotations

__all__ = ["ExportError", "ExportedFilesError", "ExportedInputError"]


class ExportError(RuntimeError):
    """A model (or one of its modules) cannot be exported; the message names the module and why
    (test-time augmentation, an operator without an ONNX form, a meta-architecture without the
    mask-classification interface, an exporter failure)."""


class ExportedFilesError(ValueError):
    """An export folder cannot be used: ``export_info.json`` is missing or malformed, or it does not
    describe the model file beside it (another file, another format, other inputs or outputs)."""


class ExportedInputError(ValueError):
    """An input given to an exported model has the wrong type, dtype, rank or size."""
