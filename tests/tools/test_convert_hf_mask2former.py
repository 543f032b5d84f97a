"""tools/convert-hf-mask2former-to-d2.py, end to end: a tiny Hugging Face Mask2Former folder to our
weights and config (the tool's own check on), then back to a Hugging Face folder that loads into
the original state dict exactly; what it prints; and the one-line error of the script. The
conversion itself is tested in ``tests/mask2former/convert``."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import yaml

from segcore.checkpoint import safe_load
from tests.e2e_utils import load_script
from tests.mask2former.convert.hf_models import NUM_QUERIES, perturbed_hf_model
from tests.paths import CONFIGS, REPO_ROOT, TOOLS

transformers = pytest.importorskip("transformers")

SCRIPT = os.path.join(TOOLS, "convert-hf-mask2former-to-d2.py")
BASE = os.path.join(CONFIGS, "ade20k", "semantic-segmentation", "swin", "maskformer2_swin_tiny_bs16_160k.yaml")

#: a log record as segcore.utils.logger formats it for the console
LOG_RECORD = re.compile(r"^\[\d\d/\d\d \d\d:\d\d:\d\d ")


@pytest.fixture(scope="module")
def tool():
    return load_script("convert_hf_mask2former_to_d2", "tools/convert-hf-mask2former-to-d2.py")


def _printed(capsys):
    """The tool's printed lines, without log records (a console log handler that an earlier test in
    the same process set up writes to stdout too: ``[12/06 22:50:10 sc.config.families]: ...``)."""
    return [line for line in capsys.readouterr().out.splitlines() if not LOG_RECORD.match(line)]


def test_hf_to_d2_and_back(tool, tmp_path, capsys):
    hf = perturbed_hf_model("swin")
    hf.save_pretrained(tmp_path / "hf")
    weights, config = tmp_path / "m2f.pth", tmp_path / "configs" / "m2f.yaml"
    config.parent.mkdir()
    written = tool.main(["hf-to-d2", str(tmp_path / "hf"), str(weights), "--base-config", BASE,
                         "--config-out", str(config)])
    printed = _printed(capsys)
    assert printed[0] == (f"Wrote {len(written['state_dict'])} weights to {weights} and the config {config} "
                          f"(_BASE_ {BASE}).")
    assert printed[1] == "Config overrides (command-line form, e.g. for train_net.py / demo.py --opts):"
    assert f"  MODEL.MASK_FORMER.NUM_OBJECT_QUERIES {NUM_QUERIES}" in printed
    assert "  MODEL.SWIN.DEPTHS '[1, 1, 2, 1]'" in printed and "  MODEL.SWIN.QK_SCALE None" in printed
    assert f"  MODEL.WEIGHTS {weights}" in printed
    assert printed[-2].startswith("Dropped (not used by Mask2Former): model.pixel_level_module.encoder.swin.layernorm.")
    assert printed[-1].startswith("Note: no preprocessor_config.json")
    assert yaml.safe_load(config.read_text())["_BASE_"] == BASE  # outside the repository: absolute
    assert set(torch.load(weights, weights_only=True)["model"]) == set(written["state_dict"])

    back = tmp_path / "back"
    converted = tool.main(["d2-to-hf", str(weights), str(back), "--config-file", str(config),
                           "--opts", "MODEL.MASK_FORMER.DROPOUT", "0.1"])
    printed = _printed(capsys)
    assert printed == ["Note: MODEL.MASK_FORMER.DROPOUT=0.1: HF applies it in the masked-attention decoder too "
                       "(training only; inference is unaffected)",
                       f"Wrote a Hugging Face Mask2Former (swin backbone, {len(converted['state_dict'])} entries) "
                       f"to {back}."]
    reloaded = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(str(back)).state_dict()
    original = hf.state_dict()
    assert set(reloaded) == set(original) and all(torch.equal(reloaded[k], original[k]) for k in original)


def test_default_base_config_and_output_names(tool, tmp_path, capsys):
    perturbed_hf_model("resnet").save_pretrained(tmp_path / "hf")
    written = tool.main(["hf-to-d2", str(tmp_path / "hf" / "model.safetensors"), str(tmp_path / "r50.pkl"),
                         "--no-check"])
    assert written["config"] == str(tmp_path / "r50.yaml")
    assert written["base_config"] == os.path.join(REPO_ROOT, "configs", "coco", "panoptic-segmentation",
                                                  "maskformer2_R50_bs16_50ep.yaml")
    with open(tmp_path / "r50.pkl", "rb") as f:
        assert safe_load(f)["matching_heuristics"] is False
    assert "(_BASE_ " + written["base_config"] + ")." in capsys.readouterr().out


def test_the_script_reports_errors_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "hf-to-d2", str(tmp_path / "missing"), str(tmp_path / "out.pkl")],
                            capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: No Hugging Face checkpoint at {tmp_path / 'missing'}"
