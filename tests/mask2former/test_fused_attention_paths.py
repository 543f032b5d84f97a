"""The fused attention path (MODEL.FUSED_ATTENTION True, the default) against the plain path (the
original implementations' nn.MultiheadAttention and written-out window attention), whole models.

The two compute the same function up to float rounding. Mask2Former's masked attention turns
rounding into discrete decisions, so a direct comparison could fail on a CPU where a logit within
rounding of 0 falls on the other side. The comparison is made CPU-independent in two ways:

- the fused run replays the plain run's attention masks, so both take every decision alike and
  must agree within float tolerance everywhere;
- without replaying, queries judged by a logit within ``TIE_MARGIN`` of 0 in the plain run (ties,
  ``tests/masked_attention_ties.py``) are set aside and every other query must agree.
"""
import os

import pytest
import torch

from segcore.engine import setup_cfg
from segcore.layers import set_fused_attention
from segcore.modeling import build_model
from tests.masked_attention_ties import tie_queries
from tests.paths import CONFIGS
from tests.reference_utils import fill_name_seeded, load_fixture

M2F = os.path.join(CONFIGS, "quickstart", "mask2former_R18_quickstart.yaml")
MF = os.path.join(CONFIGS, "quickstart", "maskformer_R18_quickstart.yaml")
SEMASK = os.path.join(CONFIGS, "quickstart", "semask_maskformer_swin_quickstart.yaml")


def _model(config):
    model = build_model(setup_cfg(config, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"]))
    fill_name_seeded(model)
    return model.eval()


def _image():
    fx = load_fixture("m2f_ade20k_sem_R50_A.pth")  # the astronaut, 240 x 328
    return _input(fx["image"])


def _input(image):
    return [{"image": image, "height": image.shape[-2], "width": image.shape[-1]}]


def _head(model, inputs):
    images = model.preprocess_image(inputs)
    return model.sem_seg_head(model.backbone(images.tensor))


def _run(model, fused, inputs, masks=None):
    """The head outputs and the attention masks used; ``masks`` replays recorded ones."""
    from mask2former.modeling.transformer_decoder import masked_attention_decoder as decoder_module

    set_fused_attention(model, fused)
    original, used = decoder_module.masked_attention_mask, []

    def recording(mask_logits, size, num_heads):
        mask = original(mask_logits, size, num_heads) if masks is None else masks[len(used)]
        used.append(mask)
        return mask

    decoder_module.masked_attention_mask = recording
    try:
        with torch.no_grad():
            return _head(model, inputs), used
    finally:
        decoder_module.masked_attention_mask = original


def _assert_head_close(a, b, queries=None):
    pick = (lambda t: t) if queries is None else (lambda t: t[:, queries])
    torch.testing.assert_close(pick(a["pred_logits"]), pick(b["pred_logits"]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(pick(a["pred_masks"]), pick(b["pred_masks"]), atol=1e-3, rtol=1e-4)


@pytest.fixture(scope="module")
def mask2former():
    return _model(M2F)


def test_mask2former_fused_equals_plain_with_the_same_decisions(mask2former):
    inputs = _image()
    plain, masks = _run(mask2former, False, inputs)
    fused, replayed = _run(mask2former, True, inputs, masks=masks)
    assert len(masks) == len(replayed) == mask2former.sem_seg_head.predictor.num_layers  # one per layer
    assert any(m.any() for m in masks)  # some positions are masked: the decisions matter
    _assert_head_close(fused, plain)
    for a, b in zip(fused["aux_outputs"], plain["aux_outputs"]):
        _assert_head_close(a, b)


def test_mask2former_fused_equals_plain_but_for_ties(mask2former):
    inputs = _image()
    set_fused_attention(mask2former, False)
    with torch.no_grad():
        plain, ties = tie_queries(lambda: _head(mask2former, inputs))
    fused, _ = _run(mask2former, True, inputs)
    num_queries = plain["pred_logits"].shape[1]
    assert len(ties) <= num_queries // 4, f"too many queries with a masked-attention logit near 0: {ties}"
    others = torch.tensor([q for q in range(num_queries) if q not in ties])
    _assert_head_close(fused, plain, others)


@pytest.mark.parametrize("config", [MF, SEMASK], ids=["maskformer", "semask-maskformer-swin"])
def test_models_without_masked_attention_fused_equals_plain(config):
    """MaskFormer's DETR decoder, and Swin's window attention (SeMask): no discrete decision."""
    model = _model(config)
    inputs = _image()
    heads = {}
    for fused in (False, True):
        assert set_fused_attention(model, fused) > 0
        with torch.no_grad():
            heads[fused] = _head(model, inputs)
    _assert_head_close(heads[True], heads[False])
