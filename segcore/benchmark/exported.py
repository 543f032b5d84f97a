"""An exported model (``tools/deploy/export_model.py``) as a benchmark runner: its
:class:`~segcore.export.ExportedPredictor` (onnxruntime for ``model.onnx``, the ``torch.export``
program for ``model.pt2``, the AOTInductor package for ``model_aoti.pt2``) timed alternately with the eager model on the same images
(``tools/benchmark.py --exported DIR``)."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from .inference import InferenceRunner, OUTPUT_ORDER

__all__ = ["ExportedInference", "exported_runner_factory"]


class ExportedInference(InferenceRunner):
    """``ExportedPredictor(export_dir)`` on each image; the network's time is the runner's call
    (onnxruntime's run or the program's forward), marked around it.

    Args:
        export_dir: an export folder. device_type: "cpu" (onnxruntime's CPU provider) or "cuda"
            (the ``.pt2`` program on the GPU; ONNX files run on the CPU provider here).
    """

    def __init__(self, *, export_dir: str, device_type: str = "cpu"):
        from segcore.export import ExportedPredictor

        super().__init__(device_type=device_type)
        kwargs = {"device": device_type} if _format(export_dir) != "onnx" else {}
        self.predictor = ExportedPredictor(export_dir, **kwargs)
        self.export_dir = export_dir
        info = self.predictor.info
        engine = {"onnx": "onnxruntime", "pt2": "torch.export", "aoti": "AOTInductor"}[info.format]
        self.name = f"{engine} ({info.model_file})"
        run = self.predictor.runner

        def marked(image):
            self.mark("network_start")
            try:
                return run(image)
            finally:
                self.mark("network_end")

        self.predictor.runner = marked  # the predictor calls its runner once per image

    def describe(self) -> dict:
        info = self.predictor.info
        post = info.postprocessing
        outputs = [t for t, on in zip(OUTPUT_ORDER, (post["semantic_on"], post["panoptic_on"], post["instance_on"]))
                   if on]
        path = os.path.join(self.export_dir, info.model_file)
        return {"outputs": outputs, "export_dir": self.export_dir, "format": info.format,
                "file_mib": os.path.getsize(path) / 2**20}

    def __call__(self, images: List[np.ndarray]):
        return [self.predictor(image) for image in images]


def exported_runner_factory(export_dir: str):
    """A :data:`~.inference.RunnerFactory` for ``export_dir``."""

    def factory(*, cfg, our_model=None, seed: int = 0) -> ExportedInference:
        import torch

        del our_model, seed
        return ExportedInference(export_dir=export_dir, device_type=torch.device(cfg.MODEL.DEVICE).type)

    return factory


def _format(export_dir: str) -> str:
    from segcore.export import read_export_info

    return read_export_info(export_dir, check_model_file=False).format
