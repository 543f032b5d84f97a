"""Exporting mask-classification models to ONNX, ``torch.export`` (``.pt2``) and AOTInductor
packages, and running the exported files (``tools/deploy/export_model.py``; docs/deployment.md).

- :func:`export_model`: one ``torch.export`` trace of :class:`ExportableNetwork` (normalization,
  padding, the network and optionally the semantic inference) with dynamic image size, saved as
  ``model.pt2``, converted to ``model.onnx`` or compiled to ``model_aoti.pt2``, checked, with ``export_info.json`` beside it.
- :class:`ExportedPredictor`: a drop-in for :class:`segcore.engine.DefaultPredictor` over an export
  folder (onnxruntime, the ``.pt2`` program or the AOTInductor package).
- :func:`register_custom_op`: how a family declares its own operators (their ONNX form, and the
  module that registers them for a ``.pt2`` program).

Nothing here imports a model family; onnx, onnxscript and onnxruntime (the ``export`` extra) are
imported only when an ONNX file is written or run.
"""
from .custom_ops import CustomOp, custom_op, register_custom_op, registered_custom_ops
from .errors import ExportedFilesError, ExportedInputError, ExportError
from .exporter import (EXPORT_FORMATS, POSTPROCESS_CHOICES, check_exportable, export_from_config, export_model,
                       exported_custom_ops)
from .info import EXPORT_INFO_FILE, ExportInfo, read_export_info, write_export_info
from .network import ExportableNetwork, padded_size
from .predictor import (AOTInductorRunner, ExportedPredictor, ExportedProgramRunner, ExportedRunner, OnnxRuntimeRunner,
                        load_runner)

__all__ = [
    "AOTInductorRunner", "CustomOp", "EXPORT_FORMATS", "EXPORT_INFO_FILE", "ExportError", "ExportInfo",
    "ExportableNetwork",
    "ExportedFilesError", "ExportedInputError", "ExportedPredictor", "ExportedProgramRunner", "ExportedRunner",
    "OnnxRuntimeRunner", "POSTPROCESS_CHOICES", "check_exportable", "custom_op", "export_from_config", "export_model",
    "exported_custom_ops", "load_runner", "padded_size", "read_export_info", "register_custom_op",
    "registered_custom_ops", "write_export_info",
]
