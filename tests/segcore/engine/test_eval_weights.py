"""``train_net.py --eval-only`` and the demo report nothing from a model that did not get its weights:
non-finite weights, weights of the wrong shapes, and no weights are errors (one line on the command
line, exit status 1), unless the config allows them explicitly."""
import os
import subprocess
import sys

import pytest
import torch

from segcore.checkpoint import IncompleteWeightsError, NonFiniteWeightsError
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.e2e_utils import MASKFORMER_QUICKSTART, TINY_MASKFORMER, load_script
from tests.paths import REPO_ROOT


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """good.pth (the tiny model's own weights), nan.pth (every tensor NaN), shapes.pth (every
    tensor of another shape)."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = build_model(setup_cfg(MASKFORMER_QUICKSTART, TINY_MASKFORMER)).state_dict()
    files = {
        "good": state,
        "nan": {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()},
        "shapes": {k: torch.zeros(v.numel() + 1) for k, v in state.items()},
    }
    for name, weights in files.items():
        torch.save({"model": weights}, folder / f"{name}.pth")
    return {name: str(folder / f"{name}.pth") for name in files}


def _eval_only(tmp_path, *opts):
    train_net = load_script("train_net", "train_net.py")
    out = str(tmp_path / "out")
    return train_net.cli(["--config-file", MASKFORMER_QUICKSTART, "--eval-only", "OUTPUT_DIR", out,
                          *TINY_MASKFORMER, *opts]), out


def _evaluated(out):
    return os.path.isdir(os.path.join(out, "inference"))


@pytest.fixture
def datasets(quickstart_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))


def test_eval_only_refuses_nan_weights(datasets, weight_files, tmp_path):
    with pytest.raises(NonFiniteWeightsError) as e:
        _eval_only(tmp_path, "MODEL.WEIGHTS", weight_files["nan"])
    assert weight_files["nan"] in str(e.value) and "not finite" in str(e.value)
    assert not _evaluated(str(tmp_path / "out"))


def test_eval_only_refuses_weights_of_other_shapes(datasets, weight_files, tmp_path):
    with pytest.raises(IncompleteWeightsError) as e:
        _eval_only(tmp_path, "MODEL.WEIGHTS", weight_files["shapes"])
    assert e.value.num_loaded == 0 and "shape mismatch" in str(e.value)
    assert not _evaluated(str(tmp_path / "out"))


def test_eval_only_refuses_no_weights_unless_allowed(datasets, tmp_path):
    with pytest.raises(IncompleteWeightsError, match="MODEL.WEIGHTS is empty"):
        _eval_only(tmp_path)
    assert not _evaluated(str(tmp_path / "out"))
    results, out = _eval_only(tmp_path, "MODEL.ALLOW_PARTIAL_WEIGHTS", "True")  # asked for explicitly
    assert 0.0 <= results["sem_seg"]["mIoU"] <= 100.0 and _evaluated(out)


def test_eval_only_with_all_weights_evaluates(datasets, weight_files, tmp_path):
    results, out = _eval_only(tmp_path, "MODEL.WEIGHTS", weight_files["good"])
    assert 0.0 <= results["sem_seg"]["mIoU"] <= 100.0 and _evaluated(out)


def test_demo_refuses_nan_weights_and_draws_nothing(weight_files, tmp_path):
    import cv2
    import numpy as np

    demo = load_script("segcore_demo_cli", os.path.join("demo", "demo.py"))
    image = str(tmp_path / "in.png")
    cv2.imwrite(image, np.full((64, 64, 3), 90, np.uint8))
    out = tmp_path / "vis"
    with pytest.raises(NonFiniteWeightsError):
        demo.main(["--config-file", MASKFORMER_QUICKSTART, "--input", image, "--output", str(out), "--opts",
                   *TINY_MASKFORMER, "MODEL.WEIGHTS", weight_files["nan"]])
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("script", ["train_net.py", os.path.join("demo", "demo.py")])
def test_the_command_line_says_it_in_one_line(weight_files, tmp_path, script):
    """The command line: ``<prog>: error: <message>``, exit status 1, no traceback."""
    args = ["--config-file", MASKFORMER_QUICKSTART]
    if script == "train_net.py":
        args += ["--eval-only", "OUTPUT_DIR", str(tmp_path / "out"), *TINY_MASKFORMER]
    else:
        args += ["--input", os.path.join(REPO_ROOT, "README.md"), "--output", str(tmp_path / "vis"), "--opts",
                 *TINY_MASKFORMER]
    args += ["MODEL.WEIGHTS", weight_files["nan"]]
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, script), *args], capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    name = os.path.basename(script)
    assert f"{name}: error: The weights in {weight_files['nan']} are not finite" in done.stderr
