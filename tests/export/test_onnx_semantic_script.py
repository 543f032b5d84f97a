"""``tools/deploy/onnx_semantic.py`` in a process where torch cannot be imported: its label map of
input A equals the arg max of PyTorch's ``sem_seg`` (away from ties)."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from segcore.engine import DefaultPredictor
from tests.paths import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "tools", "deploy", "onnx_semantic.py")
#: runs the script with ``import torch`` (and the project's packages) made to fail
WITHOUT_TORCH = """
import runpy, sys
for name in ('torch', 'segcore', 'mask_former', 'mask2former', 'semask'):
    sys.modules[name] = None  # 'import torch' now raises ImportError
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.mark.parametrize("reference_export", ["mf_ade20k_sem_R50"], indirect=True)
def test_the_torch_free_script_writes_the_label_map(reference_export, tmp_path):
    image_path, out_path = str(tmp_path / "a.png"), str(tmp_path / "labels.png")
    cv2.imwrite(image_path, reference_export.bgr())
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, SCRIPT, reference_export.export_dir, image_path,
                             out_path], capture_output=True, text=True, cwd=str(tmp_path),
                            env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0, result.stderr
    labels = cv2.imread(out_path, cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint8 and labels.shape == (240, 328)
    cfg = reference_export.cfg.clone()
    cfg.defrost()
    cfg.MODEL.ALLOW_PARTIAL_WEIGHTS = True
    predictor = DefaultPredictor(cfg)
    predictor.model.load_state_dict(reference_export.model.state_dict())
    scores = predictor(reference_export.bgr())["sem_seg"]
    top2 = scores.topk(2, dim=0).values
    decided = (top2[0] - top2[1]) > 2e-4
    assert torch.equal(torch.from_numpy(labels.astype(np.int64))[decided], scores.argmax(0)[decided])


def test_the_script_refuses_an_export_without_the_semantic_output(tiny_exports, tmp_path):
    image_path = str(tmp_path / "a.png")
    cv2.imwrite(image_path, np.zeros((64, 64, 3), np.uint8))
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, SCRIPT, tiny_exports.onnx_dir, image_path,
                             str(tmp_path / "out.png")], capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode != 0 and "--postprocess semantic" in result.stderr
