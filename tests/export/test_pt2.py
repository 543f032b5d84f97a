"""The ``.pt2`` export (``torch.export.save``): deformable attention stays one
``mask2former.ms_deform_attn`` node, the program loads with ``torch.export.load`` in a process that
only imports ``mask2former.ops`` (no config, no model built), and it returns what the eager network does."""
import json
import os
import subprocess
import sys

import torch

from segcore.export import ExportableNetwork, ExportedPredictor, exported_custom_ops, read_export_info
from tests.export.references import assert_head_outputs_close, network_outputs
from tests.paths import REPO_ROOT

#: loads the program with only the operator's module imported, runs it, saves the outputs
LOADER = """
import sys, torch
import mask2former.ops  # registers torch.ops.mask2former.ms_deform_attn: no config, no model is built
program = torch.export.load(sys.argv[1])
with torch.no_grad():
    outputs = program.module()(torch.load(sys.argv[2]))
torch.save([o.detach() for o in outputs], sys.argv[3])
"""


def test_deformable_attention_is_one_operator_node(tiny_exports):
    ops = exported_custom_ops(tiny_exports.pt2_predictor.runner.program)
    assert list(ops) == ["mask2former::ms_deform_attn"]
    assert read_export_info(tiny_exports.pt2_dir).custom_op_imports == ["mask2former.ops"]


def test_the_program_loads_and_runs_without_the_model_code(tiny_exports, tmp_path):
    image = torch.randint(0, 256, (1, 3, 100, 70), generator=torch.Generator().manual_seed(1)).float()
    torch.save(image, tmp_path / "image.pt")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    subprocess.run([sys.executable, "-c", LOADER, os.path.join(tiny_exports.pt2_dir, "model.pt2"),
                    str(tmp_path / "image.pt"), str(tmp_path / "out.pt")], check=True, env=env, cwd=str(tmp_path))
    got = torch.load(tmp_path / "out.pt")
    expected, ties = network_outputs(ExportableNetwork(tiny_exports.model).eval(), image)
    assert_head_outputs_close(got, expected, ties)


def test_the_predictor_runs_both_formats_alike(tiny_exports):
    image = torch.randint(0, 256, (90, 120, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)).numpy()
    from_pt2 = tiny_exports.pt2_predictor(image)
    from_onnx = ExportedPredictor(tiny_exports.onnx_dir)(image)
    assert set(from_pt2) == set(from_onnx) == {"sem_seg"}
    assert from_pt2["sem_seg"].shape == (from_pt2["sem_seg"].shape[0], 90, 120)
    torch.testing.assert_close(from_pt2["sem_seg"], from_onnx["sem_seg"], atol=1e-3, rtol=0)
    with open(os.path.join(tiny_exports.pt2_dir, "export_info.json")) as f:
        assert json.load(f)["format"] == "pt2"
