"""tools/analyze_model.py on the test-only StubConvSegmentor (tests/stub_meta_arch.py)."""
import importlib.util
import logging
import os

import cv2
import numpy as np
import pytest

from tests.stub_meta_arch import write_stub_config
from tests.paths import REPO_ROOT

ROOT = REPO_ROOT
NUM_CLASSES = 4
SIZE = 32  # INPUT.MIN_SIZE_TEST of the stub config


@pytest.fixture(scope="module")
def analyze():
    spec = importlib.util.spec_from_file_location("segcore_analyze_model", os.path.join(ROOT, "tools", "analyze_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cfg_file(tmp_path):
    return write_stub_config(tmp_path, num_classes=NUM_CLASSES, min_size_test=SIZE)


def _conv_macs(h, w):
    # fvcore counts one multiply-add per (output element x input channel x kernel tap)
    return NUM_CLASSES * h * w * 3 * 3 * 3


def test_parameter_count_equals_numel_sum(analyze, cfg_file):
    from segcore.modeling import build_model

    res = analyze.main(["--config-file", cfg_file, "--tasks", "parameter", "--max-depth", "2"])
    assert set(res) == {"parameter"}
    cfg = analyze.setup_cfg(analyze.get_parser().parse_args(["--config-file", cfg_file]))
    expected = sum(p.numel() for p in build_model(cfg).parameters())
    assert expected == NUM_CLASSES * 27 + NUM_CLASSES
    assert res["parameter"]["total"] == expected
    assert "conv.weight" in res["parameter"]["table"] and "(4, 3, 3, 3)" in res["parameter"]["table"]


def test_flops_on_synthetic_inputs(analyze, cfg_file):
    res = analyze.main(["--config-file", cfg_file, "--num-inputs", "2", "--opts", "MODEL.PIXEL_STD", "[32.0, 32.0, 32.0]"])
    assert set(res) == {"parameter", "flop"}
    flop = res["flop"]
    assert flop["source"] == "synthetic" and len(flop["gflops"]) == 2
    assert flop["mean_gflops"] > 0 and flop["std_gflops"] == 0
    assert flop["by_operator"]["conv"] == pytest.approx(_conv_macs(SIZE, SIZE) / 1e9)
    assert flop["mean_gflops"] >= flop["by_operator"]["conv"]
    assert "conv" in flop["table"]
    # softmax has no fvcore formula: reported once per input in the summary
    assert flop["unsupported_ops"].get("aten::softmax") == 2


def test_flops_on_dataset_images_and_quiet_fvcore(analyze, cfg_file, tmp_path):
    from segcore.data import DatasetCatalog

    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.full((40, 80, 3), 90, np.uint8))
    name = "_analyze_model_test_images"
    DatasetCatalog.register(name, lambda: [{"file_name": str(img), "height": 40, "width": 80, "image_id": 0}])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    fv_logger = logging.getLogger("fvcore")
    fv_logger.addHandler(handler)
    try:
        cfg = analyze.setup_cfg(analyze.get_parser().parse_args(
            ["--config-file", cfg_file, "--opts", "DATASETS.TEST", f"('{name}',)"]))
        flop = analyze.do_flop(cfg, num_inputs=3)
    finally:
        fv_logger.removeHandler(handler)
        DatasetCatalog.remove(name)
    assert flop["source"] == "dataset" and len(flop["gflops"]) == 1  # the dataset has one image
    # the test mapper resizes the 40x80 image to a shorter edge of 32: 32x64
    assert flop["by_operator"]["conv"] == pytest.approx(_conv_macs(32, 64) / 1e9)
    assert not [r for r in records if r.levelno >= logging.WARNING and "nsupported" in r.getMessage()]


def test_num_inputs_must_be_positive(analyze, cfg_file):
    with pytest.raises(SystemExit):
        analyze.main(["--config-file", cfg_file, "--num-inputs", "0"])
