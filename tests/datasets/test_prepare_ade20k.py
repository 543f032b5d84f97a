"""datasets/prepare_ade20k_sem_seg.py on the generated dataset's raw ADE-format labels."""
import glob
import importlib.util
import os

import numpy as np
import pytest
from PIL import Image

from segcore.quickstart import generate_quickstart
from tests.paths import DATASET_SCRIPTS

SCRIPT = os.path.join(DATASET_SCRIPTS, "prepare_ade20k_sem_seg.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("prepare_ade20k_sem_seg", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conversion_reproduces_detectron2_labels(tmp_path):
    generate_quickstart(str(tmp_path), num_train=3, num_val=2, size=96)
    ds = tmp_path / "quickstart_ade"
    expected = {p: np.asarray(Image.open(p)) for p in glob.glob(str(ds / "annotations_detectron2" / "*" / "*.png"))}
    for p in expected:
        os.remove(p)
    counts = _load_script().main(["--root", str(tmp_path), "--dataset-dir", "quickstart_ade"])
    assert counts == {"training": 3, "validation": 2}
    for p, label in expected.items():
        assert np.array_equal(np.asarray(Image.open(p)), label), p
    assert any((label == 255).any() for label in expected.values())  # ignore survives the conversion


def test_convert_label_values_and_errors():
    mod = _load_script()
    assert mod.convert_label(np.array([[0, 1, 150]], np.uint8)).tolist() == [[255, 0, 149]]
    with pytest.raises(ValueError, match="uint8"):
        mod.convert_label(np.zeros((2, 2), np.int32))


def test_missing_release_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotations"):
        _load_script().main(["--root", str(tmp_path)])
