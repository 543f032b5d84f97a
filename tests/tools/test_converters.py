"""tools/convert-torchvision-to-d2.py and tools/convert-pretrained-swin-model-to-d2.py, end to end:
the original naming in, a Detectron2 .pkl out that loads into our backbone by name matching. The
renaming is tested in ``tests/segcore/convert`` and ``tests/mask_former/convert``."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from segcore.checkpoint.safe_pickle import safe_load
from tests.e2e_utils import load_script
from tests.mask_former.convert.swin_release import swin_imagenet_state_dict, tiny_swin_maskformer
from tests.paths import TOOLS
from tests.segcore.convert.torchvision_release import tiny_r50, torchvision_state_dict


def _tool(name: str):
    return load_script(name.replace("-", "_"), os.path.join("tools", name + ".py"))


def _read(path):
    with open(path, "rb") as f:
        return safe_load(f)


def test_torchvision_resnet50(tmp_path):
    backbone = tiny_r50()
    src = tmp_path / "resnet50.pth"
    torch.save(torchvision_state_dict(backbone), src)
    content = _tool("convert-torchvision-to-d2").main([str(src), str(tmp_path / "R-50.pkl")])
    data = _read(tmp_path / "R-50.pkl")
    assert data["__author__"] == "torchvision" and data["matching_heuristics"] is True
    assert set(data["model"]) == set(content["model"]) == set(backbone.state_dict())  # fc and the counter dropped
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())


def test_torchvision_converter_rejects_non_resnet_names(tmp_path):
    src = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, src)
    with pytest.raises(ValueError, match="features.0.weight"):
        _tool("convert-torchvision-to-d2").main([str(src), str(tmp_path / "o.pkl")])


def test_swin_imagenet_checkpoint(tmp_path, mf_cfg):
    src_sd = swin_imagenet_state_dict(tiny_swin_maskformer(mf_cfg).state_dict())
    src = tmp_path / "swin_tiny_patch4_window7_224.pth"
    torch.save({"model": src_sd}, src)
    _tool("convert-pretrained-swin-model-to-d2").main([str(src), str(tmp_path / "swin.pkl")])
    data = _read(tmp_path / "swin.pkl")
    assert data["__author__"] == "third_party" and data["matching_heuristics"] is True
    assert set(data["model"]) == set(src_sd)
    assert all(np.array_equal(data["model"][k], v.numpy()) for k, v in src_sd.items())


def test_swin_converter_requires_model_key(tmp_path):
    src = tmp_path / "bad.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, src)
    with pytest.raises(ValueError, match="bad.pth"):
        _tool("convert-pretrained-swin-model-to-d2").main([str(src), str(tmp_path / "o.pkl")])


@pytest.mark.parametrize("name,content", [
    ("convert-torchvision-to-d2", {"layer1.0.conv1.weight": torch.ones(2)}),
    ("convert-pretrained-swin-model-to-d2", {"model": {"layers.0.blocks.0.norm1.weight": torch.ones(2)}}),
])
def test_the_scripts_run(name, content, tmp_path):
    src = tmp_path / "in.pth"
    torch.save(content, src)
    result = subprocess.run([sys.executable, os.path.join(TOOLS, name + ".py"), str(src), str(tmp_path / "out.pkl")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"Wrote 1 weights to {tmp_path / 'out.pkl'}"
