"""What cannot be exported is refused naming the module and why; an export folder whose files do not
fit together, and an input of the wrong type or size, are refused by the runner."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from segcore.engine import setup_cfg
from segcore.modeling import SemanticSegmentorWithTTA
from segcore.export import (ExportedFilesError, ExportedInputError, ExportedPredictor, ExportError, check_exportable,
                            export_from_config, export_model)
from tests.mask_former.tiny_models import CONFIGS, TINY, tiny_model
from tests.paths import REPO_ROOT


@torch.library.custom_op("segcore_export_test::doubled", mutates_args=())
def doubled(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@doubled.register_fake
def _(x):
    return torch.empty_like(x)


class DoublingStem(nn.Module):
    """A user's module calling an operator of its own that has no ONNX form."""

    def __init__(self, stem):
        super().__init__()
        self.stem = stem

    def forward(self, x):
        return torch.ops.segcore_export_test.doubled(self.stem(x))


def _tiny_cfg(*opts):
    return setup_cfg(os.path.join(REPO_ROOT, CONFIGS["maskformer"]), TINY + list(opts))


def test_test_time_augmentation_is_refused_naming_the_module(tmp_path):
    cfg = _tiny_cfg("TEST.AUG.ENABLED", "True")
    with pytest.raises(ExportError, match=r"SemanticSegmentorWithTTA \(TEST.AUG.ENABLED\): test-time augmentation"):
        export_from_config(cfg, str(tmp_path), format="onnx")
    assert not os.listdir(tmp_path)
    wrapped = SemanticSegmentorWithTTA(_tiny_cfg(), tiny_model("maskformer"))
    with pytest.raises(ExportError, match=r"SemanticSegmentorWithTTA \(TEST.AUG.ENABLED\)"):
        export_model(wrapped, _tiny_cfg(), str(tmp_path), format="pt2")


def test_a_model_without_the_mask_classification_interface_is_refused():
    class PerPixel(nn.Module):
        backbone = None

    with pytest.raises(ExportError, match=r"PerPixel \(MODEL.META_ARCHITECTURE\) cannot be exported: it lacks"):
        check_exportable(PerPixel())


def test_an_operator_without_an_onnx_form_is_refused_naming_the_module(tmp_path):
    model = tiny_model("maskformer")
    model.backbone.stem = DoublingStem(model.backbone.stem)
    with pytest.raises(ExportError, match=r"backbone\.stem \(DoublingStem\): operator segcore_export_test::doubled "
                                          r"has no ONNX form"):
        export_model(model, _tiny_cfg(), str(tmp_path / "onnx"), format="onnx", input_size=(64, 64))
    assert not os.path.exists(tmp_path / "onnx" / "export_info.json")
    # (a .pt2 program keeps such an operator: tests/export/test_pt2.py, with Mask2Former's)


def test_unknown_format_and_postprocess_are_refused(tmp_path):
    model = tiny_model("maskformer")
    with pytest.raises(ValueError, match="export format"):
        export_model(model, _tiny_cfg(), str(tmp_path), format="torchscript")
    with pytest.raises(ValueError, match="postprocess"):
        export_model(model, _tiny_cfg(), str(tmp_path), format="onnx", postprocess="panoptic")


def _copy(export_dir, tmp_path):
    target = str(tmp_path / "copy")
    shutil.copytree(export_dir, target)
    return target


def _edit_info(export_dir, **changes):
    path = os.path.join(export_dir, "export_info.json")
    with open(path) as f:
        info = json.load(f)
    info.update(changes)
    with open(path, "w") as f:
        json.dump(info, f)


def test_an_info_file_that_does_not_describe_the_model_file_is_refused(tiny_exports, tmp_path):
    folder = _copy(tiny_exports.onnx_dir, tmp_path)
    shutil.copy(os.path.join(tiny_exports.pt2_dir, "export_info.json"), folder)  # another export's info
    with pytest.raises(ExportedFilesError, match="not found"):
        ExportedPredictor(folder)  # it names model.pt2, which is not there
    shutil.copy(os.path.join(tiny_exports.onnx_dir, "export_info.json"), folder)
    _edit_info(folder, model_sha256="0" * 64)
    with pytest.raises(ExportedFilesError, match="does not describe .*model.onnx"):
        ExportedPredictor(folder)
    _edit_info(folder, model_sha256=tiny_exports.onnx_info.model_sha256, format="pt2")
    with pytest.raises(ExportedFilesError, match="does not match format"):
        ExportedPredictor(folder)
    _edit_info(folder, format="onnx", outputs=[{"name": "pred_logits", "shape": []}, {"name": "sem_seg", "shape": []}])
    with pytest.raises(ExportedFilesError, match="outputs"):
        ExportedPredictor(folder)
    _edit_info(folder, outputs=tiny_exports.onnx_info.outputs,
               postprocessing={**tiny_exports.onnx_info.postprocessing, "class": "subprocess.Popen"})
    with pytest.raises(ExportedFilesError, match="'subprocess.Popen', which is not in an installed model family"):
        ExportedPredictor(folder)  # nothing outside the model families is imported
    os.remove(os.path.join(folder, "export_info.json"))
    with pytest.raises(ExportedFilesError, match="export_info.json not found"):
        ExportedPredictor(folder)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_inputs_of_the_wrong_type_or_size_are_refused(tiny_exports, fmt):
    predictor = ExportedPredictor(tiny_exports.onnx_dir) if fmt == "onnx" else tiny_exports.pt2_predictor
    runner = predictor.runner
    with pytest.raises(ExportedInputError, match="float32"):
        runner(torch.zeros((1, 3, 64, 64), dtype=torch.float64))
    with pytest.raises(ExportedInputError, match=r"\(1, 3, H, W\)"):
        runner(torch.zeros((3, 64, 64)))
    with pytest.raises(ExportedInputError, match=r"33 to 8192 pixels a side, got 64x20"):
        runner(torch.zeros((1, 3, 64, 20)))
    with pytest.raises(ExportedInputError, match="uint8"):
        predictor(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ExportedInputError, match=r"\(H, W, 3\)"):
        predictor(np.zeros((64, 64), np.uint8))
