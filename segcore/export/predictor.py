"""Running an exported model: :class:`ExportedPredictor`, a drop-in for
:class:`segcore.engine.DefaultPredictor` that runs ``model.onnx`` with onnxruntime, ``model.pt2``
with ``torch.export.load`` or ``model_aoti.pt2`` with ``torch._inductor.aoti_load_package``, without the config or the model's code (the post-processing is the
project's own, named in ``export_info.json``)."""
from __future__ import annotations

import importlib
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from .errors import ExportedFilesError, ExportedInputError
from .info import ExportInfo, read_export_info
from .network import padded_size

__all__ = ["AOTInductorRunner", "ExportedPredictor", "ExportedProgramRunner", "ExportedRunner", "OnnxRuntimeRunner",
           "RUNNERS", "load_runner"]


class ExportedRunner:
    """Runs an exported network: ``runner(image)`` with image float32 (1, 3, H, W), 0..255 in the
    export's ``input_format``; returns ``{output name: float32 tensor}``.

    Raises (on call):
        ExportedInputError: the image is not a float32 (1, 3, H, W) tensor or array with H and W in
            the export's range.
    """

    def __init__(self, export_dir: str, info: ExportInfo):
        self.export_dir = export_dir
        self.info = info
        self.path = os.path.join(export_dir, info.model_file)

    def check_input(self, image: Any) -> torch.Tensor:
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(image)
        if not isinstance(image, torch.Tensor):
            raise ExportedInputError(f"the exported model takes a float32 (1, 3, H, W) tensor or array, got "
                                     f"{type(image).__name__}")
        if image.dtype != torch.float32:
            raise ExportedInputError(f"the exported model takes float32 images (0..255 values), got {image.dtype}")
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ExportedInputError(f"the exported model takes one (1, 3, H, W) image, got shape {tuple(image.shape)}")
        low, high = int(self.info.input["min_size"]), int(self.info.input["max_size"])
        height, width = int(image.shape[2]), int(image.shape[3])
        if not (low <= height <= high and low <= width <= high):
            raise ExportedInputError(f"the exported model takes images of {low} to {high} pixels a side, got "
                                     f"{height}x{width}")
        return image.contiguous()

    def __call__(self, image: Any) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


class OnnxRuntimeRunner(ExportedRunner):
    """``model.onnx`` on onnxruntime (``providers``: default the CPU provider; ``num_threads``:
    onnxruntime's intra-op threads, default torch's thread count).

    Raises:
        ExportedFilesError: the file's inputs or outputs are not those ``export_info.json`` names.
    """

    def __init__(self, export_dir: str, info: ExportInfo, *, providers: Optional[Sequence[str]] = None,
                 num_threads: Optional[int] = None):
        super().__init__(export_dir, info)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(num_threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(self.path, options,
                                                    providers=list(providers or ["CPUExecutionProvider"]))
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [info.input["name"]] or outputs != info.output_names:
            raise ExportedFilesError(f"{self.path} has inputs {inputs} and outputs {outputs}; export_info.json says "
                                     f"[{info.input['name']!r}] and {info.output_names}")

    def __call__(self, image: Any) -> Dict[str, torch.Tensor]:
        image = self.check_input(image)
        results = self.session.run(None, {self.info.input["name"]: image.cpu().numpy()})
        return {name: torch.from_numpy(r) for name, r in zip(self.info.output_names, results)}


class ExportedProgramRunner(ExportedRunner):
    """``model.pt2`` (a ``torch.export`` program) loaded with ``torch.export.load``, after importing
    the modules that register its operators (``custom_op_imports``; e.g. ``mask2former.ops``)."""

    def __init__(self, export_dir: str, info: ExportInfo, *, device: str = "cpu"):
        super().__init__(export_dir, info)
        for name in info.custom_op_imports:
            importlib.import_module(name)
        self.device = torch.device(device)
        #: the loaded ``torch.export.ExportedProgram``; ``module`` is its callable module
        self.program = torch.export.load(self.path)
        self.module = self.program.module()
        if self.device.type != "cpu":
            self.module.to(self.device)

    def __call__(self, image: Any) -> Dict[str, torch.Tensor]:
        image = self.check_input(image).to(self.device)
        with torch.no_grad():
            results = self.module(image)
        if len(results) != len(self.info.outputs):
            raise ExportedFilesError(f"{self.path} returns {len(results)} outputs; export_info.json names "
                                     f"{self.info.output_names}")
        return {name: r.detach().cpu() for name, r in zip(self.info.output_names, results)}


class AOTInductorRunner(ExportedProgramRunner):
    """``model_aoti.pt2`` (an AOTInductor package, compiled for the CPU) loaded with
    ``torch._inductor.aoti_load_package``, after importing the modules that register its operators."""

    def __init__(self, export_dir: str, info: ExportInfo, *, device: str = "cpu"):
        ExportedRunner.__init__(self, export_dir, info)
        from torch._inductor import aoti_load_package

        for name in info.custom_op_imports:
            importlib.import_module(name)
        self.device = torch.device(device)
        if self.device.type != "cpu":
            raise ExportedFilesError(f"{self.path} was compiled for the CPU; export again on a {self.device.type} "
                                     "machine for that device")
        self.module = aoti_load_package(self.path)


#: export format -> its runner
RUNNERS = {"onnx": OnnxRuntimeRunner, "pt2": ExportedProgramRunner, "aoti": AOTInductorRunner}


def load_runner(export_dir: str, **kwargs) -> ExportedRunner:
    """The runner of ``export_dir``'s format (:data:`RUNNERS`; ``kwargs`` go to its constructor).

    Raises:
        ExportedFilesError: see :func:`~segcore.export.read_export_info`.
    """
    info = read_export_info(export_dir)
    return RUNNERS[info.format](export_dir, info, **kwargs)


class ExportedPredictor:
    """An exported model on single images, as :class:`~segcore.engine.DefaultPredictor` runs a model.

    For each BGR uint8 (H, W, 3) image: the export's channel order, ``ResizeShortestEdge(min_size_test,
    max_size_test)`` (none when ``min_size_test`` is 0), the exported network (which normalizes
    and pads), then the post-processing ``export_info.json`` names (the model's own, e.g.
    :class:`mask_former.inference.MaskFormerPostProcessor`) at the original size. Returns the same
    ``{"sem_seg", "panoptic_seg", "instances"}`` dict as the model.

    Args:
        export_dir: a folder written by :func:`~segcore.export.export_model` (``tools/deploy/export_model.py``).
        kwargs: for the runner (:class:`OnnxRuntimeRunner`: ``providers``, ``num_threads``;
            :class:`ExportedProgramRunner` and :class:`AOTInductorRunner`: ``device``).

    Attributes:
        info: the :class:`ExportInfo`. runner: the :class:`ExportedRunner`. metadata: a
            :class:`segcore.data.Metadata` with the class names, colours and id maps of the export.

    Raises:
        ExportedFilesError: the folder's files do not fit together (see :func:`read_export_info`),
            or the post-processing named cannot be built.
    """

    def __init__(self, export_dir: str, **kwargs):
        self.runner = load_runner(export_dir, **kwargs)
        self.info = self.runner.info
        pre = self.info.preprocessing
        self.input_format = pre["input_format"]
        if self.input_format not in ("RGB", "BGR"):
            raise ExportedFilesError(f"export_info.json: input_format {self.input_format!r} is not RGB or BGR")
        self.size_divisibility = int(pre["size_divisibility"])
        self.aug = None
        if int(pre["min_size_test"]) > 0:
            from segcore.data.transforms import ResizeShortestEdge

            self.aug = ResizeShortestEdge([int(pre["min_size_test"])] * 2, int(pre["max_size_test"]))
        self.postprocessor = _build_postprocessor(self.info.postprocessing)
        self.metadata = _metadata(self.info.metadata)

    def preprocess(self, original_image: np.ndarray) -> torch.Tensor:
        """The network's input for a BGR uint8 (H, W, 3) image: float32 (1, 3, h, w), resized.

        Raises:
            ExportedInputError: not an (H, W, 3) uint8 array.
        """
        if not isinstance(original_image, np.ndarray) or original_image.ndim != 3 or original_image.shape[2] != 3:
            shape = getattr(original_image, "shape", None)
            raise ExportedInputError(f"ExportedPredictor expects an (H, W, 3) BGR numpy array, got "
                                     f"{type(original_image).__name__} {shape}")
        if original_image.dtype != np.uint8:
            raise ExportedInputError(f"ExportedPredictor expects a uint8 image, got {original_image.dtype}")
        image = original_image[:, :, ::-1] if self.input_format == "RGB" else original_image
        if self.aug is not None:
            image = self.aug.get_transform(image).apply_image(image)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().unsqueeze(0)

    def __call__(self, original_image: np.ndarray) -> dict:
        """Args: original_image: uint8 (H, W, 3) BGR. Returns: the model's output dict at (H, W)."""
        height, width = original_image.shape[:2] if isinstance(original_image, np.ndarray) else (0, 0)
        image = self.preprocess(original_image)
        outputs = self.runner(image)
        image_size = (int(image.shape[2]), int(image.shape[3]))
        padded = padded_size(image_size[0], image_size[1], self.size_divisibility)
        return self.postprocessor(outputs["pred_logits"][0].float(), outputs["pred_masks"][0].float(), padded,
                                  image_size, (height, width))


def _build_postprocessor(settings: Dict[str, Any]):
    settings = dict(settings)
    qualified = settings.pop("class", "mask_former.inference.postprocessor.MaskFormerPostProcessor")
    module_name, _, class_name = str(qualified).rpartition(".")
    # import only from the installed model families' packages: the file names a class, and a
    # folder from elsewhere must not make the predictor import arbitrary modules
    from segcore.config.families import get_model_families

    families = sorted(f.name for f in get_model_families())
    if module_name.split(".")[0] not in families:
        raise ExportedFilesError(f"export_info.json names the post-processing {qualified!r}, which is not in an "
                                 f"installed model family's package ({families})")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ExportedFilesError(f"export_info.json names the post-processing {qualified!r}, which cannot be imported "
                                 f"({type(e).__name__}: {e}); install the package that provides it") from e
    if not isinstance(cls, type) or not callable(getattr(cls, "outputs", None)):
        raise ExportedFilesError(f"export_info.json: {qualified!r} is not a post-processor class")
    try:
        return cls(**settings)
    except (TypeError, ValueError) as e:
        raise ExportedFilesError(f"export_info.json: {qualified} cannot be built from its settings: {e}") from e


def _metadata(entries: Dict[str, Any]):
    from segcore.data.catalog import Metadata

    metadata = Metadata(name=str(entries.get("name", "exported")))
    for key, value in entries.items():
        if key == "name":
            continue
        if key.endswith("_id_to_contiguous_id"):
            value = {int(k): int(v) for k, v in value}
        setattr(metadata, key, value)
    return metadata
