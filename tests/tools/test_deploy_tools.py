"""The deployment command lines end to end on a tiny MaskFormer (the quickstart config made tiny,
random weights; the cheapest model to export, Mask2Former's exports are tests/export's):
tools/deploy/export_model.py writes an ONNX export (through the ONNX optimizer, the tool's default)
with the semantic output, and demo/demo.py --exported and tools/benchmark.py --exported run it."""
import json
import os

import cv2
import numpy as np
import pytest

from segcore.export import ExportError
from tests.e2e_utils import load_script
from tests.mask_former.tiny_models import CONFIGS, TINY
from tests.paths import REPO_ROOT

CONFIG = os.path.join(REPO_ROOT, CONFIGS["maskformer"])
OPTS = [*TINY, "MODEL.ALLOW_PARTIAL_WEIGHTS", "True", "INPUT.MIN_SIZE_TEST", "64"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("deploy") / "onnx")
    tool = load_script("segcore_export_model", "tools/deploy/export_model.py")
    info = tool.main(["--config-file", CONFIG, "--format", "onnx", "--output", out, "--input-size", "64", "80",
                      "--postprocess", "semantic", "--opts", *OPTS])
    return out, info


def test_export_model_writes_the_file_and_its_info(exported, capsys):
    out, info = exported
    assert sorted(os.listdir(out)) == ["export_info.json", "model.onnx"]
    with open(os.path.join(out, "export_info.json")) as f:
        written = json.load(f)
    assert written["config_file"] == CONFIG and written["format"] == "onnx" and written["opset"] == 18
    assert [o["name"] for o in written["outputs"]] == ["pred_logits", "pred_masks", "sem_seg"]
    assert written["input"]["example_size"] == [64, 80] and written["preprocessing"]["min_size_test"] == 64
    assert written["preprocessing"]["pixel_mean"] and written["metadata"]["stuff_classes"]
    assert set(written["check"]["max_abs_diff"]) == {"pred_logits", "pred_masks", "sem_seg"}
    assert info.model_file == "model.onnx"


def test_export_model_refuses_test_time_augmentation(tmp_path):
    tool = load_script("segcore_export_model", "tools/deploy/export_model.py")
    with pytest.raises(ExportError, match="test-time augmentation"):
        tool.main(["--config-file", CONFIG, "--format", "pt2", "--output", str(tmp_path), "--opts", *OPTS,
                   "TEST.AUG.ENABLED", "True"])


def test_the_demo_draws_with_an_exported_model(exported, tmp_path):
    image = str(tmp_path / "in.png")
    cv2.imwrite(image, np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8))
    demo = load_script("segcore_demo_exported", "demo/demo.py")
    written = demo.main(["--exported", exported[0], "--input", image, "--output", str(tmp_path / "out.png")])
    assert written == [str(tmp_path / "out.png")]
    assert cv2.imread(written[0]).shape == (70, 90, 3)
    with pytest.raises(SystemExit):
        demo.main(["--exported", exported[0], "--config-file", CONFIG, "--input", image, "--output", str(tmp_path)])


def test_the_benchmark_times_the_export_beside_eager_pytorch(exported):
    benchmark = load_script("segcore_benchmark_exported", "tools/benchmark.py")
    report = benchmark.main(["--exported", exported[0], "--input-size", "64", "80", "--iters", "2", "--warmup", "1",
                             "--opts", *OPTS])
    results = report["results"]
    assert set(results) == {"this project", "onnxruntime (model.onnx)", "input"}
    entry = results["onnxruntime (model.onnx)"]
    assert entry["median_s"] > 0 and entry["network_median_s"] > 0 and entry["outputs"] == ["sem_seg"]
