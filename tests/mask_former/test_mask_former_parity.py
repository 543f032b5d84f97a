"""MaskFormer (ADE20K-150, R50) against the original implementation's measured outputs.

Fixtures: ``tests/fixtures/mf_ade20k_sem_R50_*`` (see fixtures/README.md). Weights come from the
name-seeded rule, so equal outputs mean equal architecture and arithmetic. Tolerances are those
of the reference README: logits and sem_seg samples 1e-4, masks 1e-3 (values reach ~30).
"""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.reference_utils import (FIXTURES, SAMPLE_RTOL, assert_checksums_match, fill_name_seeded, load_fixture,
                                   reference_keys)
from segcore.modeling import build_model
from tests.paths import CONFIGS

CONFIG = os.path.join(CONFIGS, "ade20k-150", "maskformer_R50_bs16_160k.yaml")


def _build(mf_cfg, *overrides):
    mf_cfg.merge_from_file(CONFIG)
    # the original's arithmetic: nn.MultiheadAttention rather than the fused kernel
    mf_cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.FUSED_ATTENTION", "False", *overrides])
    model = build_model(mf_cfg)
    fill_name_seeded(model)
    return model


@pytest.fixture(scope="module")
def head_and_output():
    from mask_former import add_mask_former_config
    from segcore.config import get_cfg

    cfg = get_cfg()
    add_mask_former_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    model = _build(cfg).eval()
    fx = load_fixture("mf_ade20k_sem_R50_A.pth")
    inputs = [{"image": fx["image"], "height": fx["height"], "width": fx["width"]}]
    with torch.no_grad():
        images = model.preprocess_image(inputs)
        head = model.sem_seg_head(model.backbone(images.tensor))
        out = model(inputs)
    return model, fx, head, out


def test_state_dict_names_and_shapes_equal_original(mf_cfg):
    model = _build(mf_cfg)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == reference_keys("mf_ade20k_sem_R50")


def test_name_seeded_weights_match_reference_checksums(mf_cfg):
    model = _build(mf_cfg)
    with open(os.path.join(FIXTURES, "mf_ade20k_sem_R50_weights_checksum.json")) as f:
        checksums = json.load(f)
    assert_checksums_match(model.state_dict(), checksums)


def test_head_outputs_match_original(head_and_output):
    _, fx, head, _ = head_and_output
    q = fx["query_subset"]
    assert list(head["pred_masks"].shape) == fx["pred_masks_shape"]
    assert len(head["aux_outputs"]) == 5
    torch.testing.assert_close(head["pred_logits"], fx["pred_logits"], atol=1e-4, rtol=0)
    torch.testing.assert_close(head["aux_outputs"][0]["pred_logits"], fx["aux0_pred_logits"], atol=1e-4, rtol=0)
    torch.testing.assert_close(head["pred_masks"][:, q], fx["pred_masks_subset"], atol=1e-3, rtol=0)
    torch.testing.assert_close(head["aux_outputs"][0]["pred_masks"][:, q], fx["aux0_pred_masks_subset"],
                               atol=1e-3, rtol=0)
    sums = head["pred_masks"].double().sum((2, 3))
    torch.testing.assert_close(sums, fx["pred_masks_query_sums"], atol=2.0, rtol=1e-5)


def test_semantic_output_matches_original(head_and_output):
    _, fx, _, out = head_and_output
    sem_seg = out[0]["sem_seg"]
    assert list(sem_seg.shape) == fx["sem_seg_shape"] and sem_seg.dtype == torch.float32
    ys, xs = fx["sample_coords_yx"][:, 0], fx["sample_coords_yx"][:, 1]
    torch.testing.assert_close(sem_seg[:, ys, xs].T, fx["sem_seg_samples"], atol=1e-4, rtol=SAMPLE_RTOL)
    torch.testing.assert_close(sem_seg.double().sum((1, 2)), fx["sem_seg_class_sums"], rtol=1e-5, atol=1e-2)
    differing = (sem_seg.argmax(0).to(torch.int16) != fx["sem_seg_argmax"]).sum().item()
    assert differing <= 300


class _GT:
    def __init__(self, classes, masks):
        self.gt_classes, self.gt_masks = classes, masks

    def to(self, device):
        return self


@pytest.mark.parametrize("fixture_name,mapper_pad", [("mf_ade20k_sem_R50_loss_A.pth", True),
                                                     ("mf_ade20k_sem_R50_loss_A_nopad.pth", False)])
def test_training_losses_and_matching_match_original(mf_cfg, fixture_name, mapper_pad):
    model = _build(mf_cfg, "MODEL.MASK_FORMER.DROPOUT", "0.0").train()
    ref = load_fixture(fixture_name)
    image = load_fixture("mf_ade20k_sem_R50_A.pth")["image"]
    shape = ref["gt_masks_shape"]
    masks = np.unpackbits(ref["gt_masks_packbits"].numpy())[: int(np.prod(shape))].reshape(shape).astype(bool)
    if mapper_pad:  # the original mapper pads the image to 512x512 with 128
        image = F.pad(image, [0, shape[2] - image.shape[2], 0, shape[1] - image.shape[1]], value=128)
    calls = []
    matcher_forward = model.criterion.matcher.forward

    def recording(outputs, targets):
        calls.append(matcher_forward(outputs, targets))
        return calls[-1]

    model.criterion.matcher.forward = recording
    losses = model([{"image": image, "height": 240, "width": 328,
                     "instances": _GT(ref["gt_classes"], torch.from_numpy(masks))}])
    assert sorted(losses) == sorted(ref["losses"])
    assert model.criterion.weight_dict == pytest.approx(ref["weight_dict"])
    for k, v in ref["losses"].items():
        assert losses[k].item() == pytest.approx(v, rel=1e-4), k
    assert len(calls) == len(ref["matcher_indices_all_calls"]) == 6
    for ours, theirs in zip(calls, ref["matcher_indices_all_calls"]):
        assert torch.equal(ours[0][0], theirs[0][0]) and torch.equal(ours[0][1], theirs[0][1])
    # the losses train: gradients reach the backbone
    sum(losses.values()).backward()
    assert model.backbone.res2[0].conv1.weight.grad.abs().sum() > 0


def test_config_empty_weight_variant(mf_cfg):
    """With the configured no-object weight (ones, 0.1 last) the CE terms match the second fixture."""
    model = _build(mf_cfg, "MODEL.MASK_FORMER.DROPOUT", "0.0").train()
    ref = load_fixture("mf_ade20k_sem_R50_loss_A_nopad.pth")
    expected = torch.ones(151)
    expected[-1] = 0.1
    torch.testing.assert_close(ref["config_empty_weight"], expected)
    model.criterion.empty_weight.copy_(ref["config_empty_weight"])
    image = load_fixture("mf_ade20k_sem_R50_A.pth")["image"]
    shape = ref["gt_masks_shape"]
    masks = np.unpackbits(ref["gt_masks_packbits"].numpy())[: int(np.prod(shape))].reshape(shape).astype(bool)
    losses = model([{"image": image, "instances": _GT(ref["gt_classes"], torch.from_numpy(masks))}])
    for k, v in ref["losses_config_empty_weight"].items():
        assert losses[k].item() == pytest.approx(v, rel=1e-4), k
