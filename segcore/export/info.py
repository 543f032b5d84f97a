"""``export_info.json``: what a runner needs beside an exported model file to pre- and post-process
without the config (written by :func:`segcore.export.export_model`, read by
:class:`segcore.export.ExportedPredictor` and ``tools/deploy/onnx_semantic.py``).

Layout (format version 1; sizes given as names are dynamic)::

    {"format_version": 1, "format": "onnx" | "pt2" | "aoti", "model_file": "model.onnx", "model_sha256": "...",
     "config_file": ..., "weights": ..., "opset": 18 | null, "postprocess": "none" | "semantic",
     "input": {"name": "image", "dtype": "float32", "shape": [1, 3, "height", "width"],
               "min_size": 33, "max_size": 4096, "example_size": [H, W]},
     "outputs": [{"name": "pred_logits", "shape": [1, Q, K + 1]},
                 {"name": "pred_masks", "shape": [1, Q, "padded_height / 4", "padded_width / 4"]},
                 {"name": "sem_seg", "shape": [K, "height", "width"]}],          # with "semantic"
     "preprocessing": {"input_format": "RGB" | "BGR", "pixel_mean": [...], "pixel_std": [...],
                       "size_divisibility": 32, "min_size_test": 512, "max_size_test": 2048},
     "postprocessing": {"class": "mask_former.inference.postprocessor.MaskFormerPostProcessor",
                        "semantic_on": ..., "panoptic_on": ..., "instance_on": ...,
                        "masks_at_output_size": ..., "object_mask_threshold": ..., "overlap_threshold": ...,
                        "panoptic_mask_must_be_confident": ..., "topk": ..., "thing_classes": [contiguous ids]},
                        (the post-processor's class and its keyword arguments)
     "metadata": {"stuff_classes": [...], "thing_classes": [...], "stuff_colors": [...], ...},
     "custom_op_imports": ["mask2former.ops"], "versions": {"torch": ..., ...}, "check": {...}}

The image goes in as ``input.dtype`` (1, 3, H, W) 0..255 values in ``preprocessing.input_format``
order; the network normalizes and pads it itself. The file is plain JSON so that a reader needs
only the standard library.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import ExportedFilesError

__all__ = ["EXPORT_INFO_FILE", "MODEL_FILES", "ExportInfo", "file_sha256", "read_export_info", "write_export_info"]

#: the file's name inside an export folder
EXPORT_INFO_FILE = "export_info.json"
#: the layout version this code writes and reads
FORMAT_VERSION = 1
#: format -> the model file's name in the folder: ONNX, a ``torch.export`` program, an AOTInductor package
MODEL_FILES = {"onnx": "model.onnx", "pt2": "model.pt2", "aoti": "model_aoti.pt2"}
FORMATS = tuple(MODEL_FILES)


@dataclass
class ExportInfo:
    """The contents of ``export_info.json`` (see the module's docstring for each entry)."""

    format: str
    model_file: str
    model_sha256: str
    input: Dict[str, Any]
    outputs: List[Dict[str, Any]]
    preprocessing: Dict[str, Any]
    postprocessing: Dict[str, Any]
    metadata: Dict[str, Any] = field(default_factory=dict)
    postprocess: str = "none"
    config_file: str = ""
    weights: str = ""
    opset: Optional[int] = None
    custom_op_imports: List[str] = field(default_factory=list)
    versions: Dict[str, str] = field(default_factory=dict)
    check: Dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def output_names(self) -> List[str]:
        return [o["name"] for o in self.outputs]

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_export_info(export_dir: str, info: ExportInfo) -> str:
    """Write ``export_dir/export_info.json``; returns its path."""
    path = os.path.join(export_dir, EXPORT_INFO_FILE)
    with open(path, "w") as f:
        json.dump(info.to_dict(), f, indent=2)
        f.write("\n")
    return path


_REQUIRED = {"format": str, "model_file": str, "model_sha256": str, "input": dict, "outputs": list,
             "preprocessing": dict, "postprocessing": dict}
_PREPROCESSING = ("input_format", "pixel_mean", "pixel_std", "size_divisibility", "min_size_test", "max_size_test")


def read_export_info(export_dir: str, *, check_model_file: bool = True) -> ExportInfo:
    """Read and check ``export_dir/export_info.json``.

    Args:
        export_dir: the folder :func:`segcore.export.export_model` wrote.
        check_model_file: also check that the model file beside it is the one it describes (its
            SHA-256).

    Raises:
        ExportedFilesError: the file is missing, not JSON, of another layout version, lacks an
            entry, or does not describe the model file (missing, or other bytes).
    """
    path = os.path.join(export_dir, EXPORT_INFO_FILE)
    if not os.path.isfile(path):
        raise ExportedFilesError(f"{path} not found: an export folder holds the model file and the export_info.json "
                                 "that tools/deploy/export_model.py writes beside it")
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportedFilesError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(raw, dict):
        raise ExportedFilesError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ExportedFilesError(f"{path}: format_version {raw.get('format_version')!r} is not {FORMAT_VERSION} "
                                 "(export the model again with this version)")
    for key, kind in _REQUIRED.items():
        if not isinstance(raw.get(key), kind):
            raise ExportedFilesError(f"{path}: entry {key!r} is missing or not a {kind.__name__}")
    if raw["format"] not in FORMATS:
        raise ExportedFilesError(f"{path}: format {raw['format']!r} is not one of {FORMATS}")
    missing = [k for k in _PREPROCESSING if k not in raw["preprocessing"]]
    if missing:
        raise ExportedFilesError(f"{path}: preprocessing lacks {missing}")
    known = {f.name for f in dataclasses.fields(ExportInfo)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ExportedFilesError(f"{path}: unknown entries {unknown}")
    info = ExportInfo(**raw)
    model_path = os.path.join(export_dir, info.model_file)
    if os.path.basename(info.model_file) != info.model_file:
        raise ExportedFilesError(f"{path}: model_file {info.model_file!r} must be a file name inside the folder")
    if info.model_file != MODEL_FILES[info.format]:
        raise ExportedFilesError(f"{path}: model_file {info.model_file!r} does not match format {info.format!r} "
                                 f"(whose file is {MODEL_FILES[info.format]!r})")
    if check_model_file:
        if not os.path.isfile(model_path):
            raise ExportedFilesError(f"{model_path} (named by {path}) not found")
        digest = file_sha256(model_path)
        if digest != info.model_sha256:
            raise ExportedFilesError(f"{path} does not describe {model_path}: the file's SHA-256 is {digest}, "
                                     f"export_info.json says {info.model_sha256} (a file from another export? "
                                     "export again, or copy the folder as a whole)")
    return info
