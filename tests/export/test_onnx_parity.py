"""ONNX exports of the reference models of the three families (MaskFormer R50 ADE20K, Mask2Former R50
COCO panoptic, SeMask-MaskFormer Swin-T; tests/export/conftest.py) on stock onnxruntime, against PyTorch with the name-seeded weights and input A.

The model runs the original's arithmetic (``MODEL.FUSED_ATTENTION False``); ONNX and PyTorch round
differently, so a masked-attention query judged by a logit within ``TIE_MARGIN`` of 0 may take the
other branch: such tie queries are compared loosely (tests/masked_attention_ties.py), every other
query within 1e-4 (logits) / 1e-3 (masks).
"""
import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from segcore.engine import DefaultPredictor
from segcore.export import ExportedPredictor, read_export_info
from tests.export.references import assert_head_outputs_close, assert_labels_equal_away_from_ties, network_outputs


def _session(export):
    return onnxruntime.InferenceSession(f"{export.export_dir}/model.onnx", providers=["CPUExecutionProvider"])


def test_the_file_is_standard_onnx_with_dynamic_size(reference_export):
    model = onnx.load(f"{reference_export.export_dir}/model.onnx", load_external_data=False)
    nodes = list(model.graph.node) + [node for function in model.functions for node in function.node]
    local_functions = {(function.domain, function.name) for function in model.functions}
    # standard operators only (or functions defined in the file): no custom operator library
    assert all(n.domain in ("", "ai.onnx") or (n.domain, n.op_type) in local_functions for n in nodes)
    image = model.graph.input[0]
    assert image.name == "image" and [o.name for o in model.graph.output] == ["pred_logits", "pred_masks", "sem_seg"]
    dims = image.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 3] and all(d.dim_param for d in dims[2:])
    if reference_export.name.startswith("m2f"):  # deformable attention became GridSample nodes
        assert any(node.op_type == "GridSample" for node in nodes)
    info = read_export_info(reference_export.export_dir)
    assert info.format == "onnx" and info.opset >= 16 and info.postprocess == "semantic"
    assert info.preprocessing["input_format"] == reference_export.cfg.INPUT.FORMAT
    assert info.outputs[0]["shape"] == list(reference_export.expected[0].shape)


def test_onnxruntime_outputs_equal_pytorch(reference_export):
    got = _session(reference_export).run(None, {"image": reference_export.batch.numpy()})
    got = [torch.from_numpy(g) for g in got]
    assert_head_outputs_close(got[:2], reference_export.expected[:2], reference_export.ties)
    sem_seg, expected = got[2], reference_export.expected[2]
    assert sem_seg.shape == expected.shape == (expected.shape[0], 240, 328)
    tolerance = 1e-3 if reference_export.ties else 1e-4
    torch.testing.assert_close(sem_seg, expected, atol=tolerance, rtol=5e-5)
    assert_labels_equal_away_from_ties(sem_seg, expected, 2 * tolerance)


def test_the_exported_predictor_equals_the_default_predictor(reference_export):
    cfg = reference_export.cfg.clone()
    cfg.defrost()
    cfg.MODEL.ALLOW_PARTIAL_WEIGHTS = True
    predictor = DefaultPredictor(cfg)
    predictor.model.load_state_dict(reference_export.model.state_dict())
    image = reference_export.bgr()
    expected = predictor(image)
    got = ExportedPredictor(reference_export.export_dir)(image)
    assert set(got) == set(expected)
    tolerance = 1e-3 if reference_export.ties else 1e-4
    torch.testing.assert_close(got["sem_seg"], expected["sem_seg"], atol=tolerance, rtol=5e-5)
    assert_labels_equal_away_from_ties(got["sem_seg"], expected["sem_seg"], 2 * tolerance)
    if "panoptic_seg" in expected:
        (seg, info), (expected_seg, expected_info) = got["panoptic_seg"], expected["panoptic_seg"]
        assert seg.dtype == expected_seg.dtype and seg.shape == expected_seg.shape
        assert info == expected_info
        # the pixels of a segment are decided by per-pixel maxima over queries: a few hundred sit at ties
        assert (seg != expected_seg).sum().item() <= 300
    if "instances" in expected:
        scores, expected_scores = got["instances"].scores, expected["instances"].scores
        assert len(scores) == len(expected_scores)
        np.testing.assert_allclose(np.sort(scores.numpy()), np.sort(expected_scores.numpy()), atol=1e-3)


# the models whose sizes pass through the most padding: Swin's windows (one window in the last stage
# at 97 pixels), and deformable attention's levels
@pytest.mark.parametrize("reference_export", ["m2f_coco_pan_R50", "semask_mf_ade_SwinT"], indirect=True)
def test_one_file_serves_other_sizes(reference_export):
    session = _session(reference_export)
    generator = torch.Generator().manual_seed(0)
    for height, width in ((192, 256), (97, 161)):  # no padding needed; padding on both sides
        image = torch.randint(0, 256, (1, 3, height, width), generator=generator).float()
        expected, ties = network_outputs(reference_export.network, image)
        got = [torch.from_numpy(g) for g in session.run(None, {"image": image.numpy()})]
        padded = (-(-height // 32) * 32, -(-width // 32) * 32)
        assert got[1].shape[-2:] == (padded[0] // 4, padded[1] // 4) and got[2].shape[-2:] == (height, width)
        assert_head_outputs_close(got[:2], expected[:2], ties)
        torch.testing.assert_close(got[2], expected[2], atol=1e-3 if ties else 1e-4, rtol=5e-5)
