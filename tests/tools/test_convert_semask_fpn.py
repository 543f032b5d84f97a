"""tools/convert-semask-fpn-to-d2.py, end to end: a SeMask-FPN checkpoint with the released model's
entries converts, is checked against our SeMask-T FPN (``--config-file``) and loads strictly; what
does not fit is an error, in one line from the script. The renaming itself is tested in
``tests/semask/convert``."""
import os
import subprocess
import sys

import pytest
import torch

from segcore.checkpoint import Checkpointer
from segcore.checkpoint.safe_pickle import safe_load
from segcore.convert import build_model_of_config
from tests.e2e_utils import load_script
from tests.paths import TOOLS
from tests.semask.convert.semask_fpn_release import CONFIG, released_state_dict

SCRIPT = os.path.join(TOOLS, "convert-semask-fpn-to-d2.py")


@pytest.fixture(scope="module")
def tool():
    return load_script("convert_semask_fpn_to_d2", "tools/convert-semask-fpn-to-d2.py")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    src = tmp_path_factory.mktemp("semask_fpn") / "semask_fpn_tiny_ade20k.pth"
    torch.save({"meta": {"CLASSES": ("wall",), "iter": 80000}, "state_dict": released_state_dict()}, src)
    return src


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_convert_then_load_strictly(tool, release, tmp_path, suffix):
    out = tmp_path / f"converted{suffix}"
    content = tool.main([str(release), str(out), "--config-file", CONFIG])
    if suffix == ".pkl":
        with open(out, "rb") as f:
            data = safe_load(f)
    else:
        data = torch.load(out, weights_only=True)
    assert data["matching_heuristics"] is False and "SeMask-FPN" in data["__author__"]
    assert set(data["model"]) == set(content["model"])
    _, model = build_model_of_config(CONFIG)
    Checkpointer(model).load(str(out), strict=True)  # no missing, unexpected or mis-shaped entry
    released = released_state_dict()
    assert torch.equal(model.state_dict()["sem_seg_head.predictor.weight"], released["decode_head.conv_seg.weight"])


def test_what_does_not_fit_is_an_error(tool, release, tmp_path):
    with pytest.raises(ValueError, match=r"\.pkl.*\.pth"):
        tool.main([str(release), str(tmp_path / "out.bin")])
    # the ADE20K weights against a 19-class model: the classifier and semantic layers do not fit
    with pytest.raises(ValueError, match=r"shapes differ.*predictor\.weight"):
        tool.main([str(release), str(tmp_path / "out.pkl"), "--config-file", CONFIG,
                   "--opts", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "19"])
    assert list(tmp_path.iterdir()) == []


def test_the_script_reports_errors_in_one_line(tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save({"backbone.a": torch.zeros(1)}, bare)  # a state dict without mmcv's wrapper
    result = subprocess.run([sys.executable, SCRIPT, str(bare), str(tmp_path / "out.pkl")], capture_output=True,
                            text=True)
    assert result.returncode == 1 and result.stderr.startswith(f"error: {bare} has no 'state_dict'")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.pkl").exists()
