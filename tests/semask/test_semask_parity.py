"""SeMask-MaskFormer and SeMask-Mask2Former (ADE20K, SeMask Swin-T) against the original
implementation's measured outputs, and the state-dict names of both reference models.

The references (``shared/reference/semask_{mf,m2f}_ade_SwinT``, copied into
``tests/fixtures/semask_*``, see fixtures/README.md) were measured with the original SeMask Swin-L
configs and the SeMask-T backbone overrides below (the original release has no SeMask Swin-T
config for these packages), the name-seeded weights and input A, in eval mode. Tolerances are the
reference README's: logits, sem_seg samples and the semantic branch 1e-4, masks 1e-3; discrete
maps equal but for a few hundred pixels at ties.

The models run the original's arithmetic: ``MODEL.FUSED_ATTENTION False`` (the written-out window
attention and ``nn.MultiheadAttention``) and the original's pure-PyTorch deformable attention
(``MSDA_FORCE_PYTORCH=1``), which the reference was measured with: with these random weights the
SeMask-Mask2Former decoder is far more sensitive to rounding than the R50 reference (the ~3e-6 that a
compiled deformable-attention kernel changes in the pixel decoder flips decisions in most queries).

For SeMask-Mask2Former, masked attention is a threshold on the previous mask logits: a query judged
by a logit within float rounding of 0 (a tie) may take the other branch (query 18 does here with
AVX2 arithmetic, not with SSE). Ties are found by the rule of ``tests/masked_attention_ties.py``,
the same on every CPU, and compared loosely; every other query strictly.
"""
import json
import os

import pytest
import torch

from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.configs.test_configs_build import build_uninitialized
from tests.masked_attention_ties import tie_queries
from tests.paths import CONFIGS, FIXTURES
from tests.reference_utils import SAMPLE_RTOL, assert_checksums_match, fill_name_seeded, load_fixture, reference_keys
from tests.semask.tiny import CONFIGS_BY_FAMILY

#: the SeMask-T hyper-parameters (SeMask-FPN's semask_swin tiny config) put on the Swin-L configs
SEMASK_TINY = ["MODEL.SWIN.EMBED_DIM", "96", "MODEL.SWIN.DEPTHS", "[2, 2, 6, 2]", "MODEL.SWIN.NUM_HEADS",
               "[3, 6, 12, 24]", "MODEL.SWIN.WINDOW_SIZE", "7", "MODEL.SWIN.SEM_WINDOW_SIZE", "7",
               "MODEL.SWIN.NUM_SEM_BLOCKS", "1", "MODEL.SWIN.PRETRAIN_IMG_SIZE", "224"]
#: reference name -> (our config, key of the model's entries in the fixture)
REFERENCES = {
    "semask_mf_ade_SwinT": (CONFIGS_BY_FAMILY["maskformer"], "mf"),
    "semask_m2f_ade_SwinT": (CONFIGS_BY_FAMILY["mask2former"], "m2f"),
}
#: at most this many of the 100 queries may be ties (Mask2Former only; measured: 10 or 11 of them
#: have a logit within TIE_MARGIN of 0, depending on the CPU), so that most are compared strictly
MAX_TIES = 25
#: the environment variable that makes multi-scale deformable attention run its PyTorch reference
#: (the original's CPU path) rather than a compiled kernel (mask2former.ops.dispatch)
FORCE_PYTORCH_DEFORMABLE_ATTENTION = "MSDA_FORCE_PYTORCH"


def _cfg(name):
    config = REFERENCES[name][0]
    return setup_cfg(os.path.join(CONFIGS, *config.split("/")), ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu",
                                                                  "MODEL.FUSED_ATTENTION", "False", *SEMASK_TINY])


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_state_dict_names_and_shapes_equal_the_original(name):
    model = build_uninitialized(_cfg(name))
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == reference_keys(name)


@pytest.fixture(scope="module")
def fixture_a():
    return load_fixture("semask_ade_SwinT_A.pth")


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def measured(request, fixture_a):
    name = request.param
    model = build_model(_cfg(name))
    fill_name_seeded(model)
    model.eval()
    fx = fixture_a[REFERENCES[name][1]]
    inputs = [{"image": fixture_a["image"], "height": fixture_a["height"], "width": fixture_a["width"]}]
    with torch.no_grad(), pytest.MonkeyPatch.context() as env:
        env.setenv(FORCE_PYTORCH_DEFORMABLE_ATTENTION, "1")
        images = model.preprocess_image(inputs)
        features = model.backbone(images.tensor)
        if "m2f" in name:
            head, ties = tie_queries(lambda: model.sem_seg_head(features))
        else:  # MaskFormer's decoder has no masked attention
            head, ties = model.sem_seg_head(features), []
        prior = model.sem_seg_head.semantic_prior(features)
        out = model(inputs)[0]
    assert len(ties) <= MAX_TIES, f"too many queries with a masked-attention logit near 0: {ties}"
    return name, model, fx, head, prior, out, ties


def test_name_seeded_semantic_layer_weights_match_the_reference_checksums(measured):
    _, model, _, _, _, _, _ = measured
    with open(os.path.join(FIXTURES, "semask_ade_SwinT_semantic_weights_checksum.json")) as f:
        checksums = json.load(f)
    assert len(checksums) == 4 * 11  # per stage: norm1 (2) + one block (gamma + 4 linear layers)
    assert_checksums_match(model.state_dict(), checksums)


def test_semantic_branch_matches_the_original(measured, fixture_a):
    """The stage maps of the Semantic Layers and the semantic decoder's accumulated prior."""
    _, _, _, head, prior, _, _ = measured
    branch = fixture_a["semantic_branch"]
    maps = head["semantic_stage_maps"]
    assert "semantic_prior" not in head  # eval mode: the semantic decoder is a training branch
    assert len(maps) == 4
    for i, m in enumerate(maps):
        stats = branch["stats"][f"aux{i}"]
        assert list(m.shape) == stats["shape"]
        assert m.double().sum().item() == pytest.approx(stats["sum"], rel=1e-5, abs=1e-2), i
        assert m.double().abs().sum().item() == pytest.approx(stats["abssum"], rel=1e-6), i
    stats = branch["stats"]["pred"]
    assert list(prior.shape) == stats["shape"] == [1, 150, 256, 352]  # the padded input size
    assert prior.double().sum().item() == pytest.approx(stats["sum"], rel=1e-6)
    assert prior.double().abs().sum().item() == pytest.approx(stats["abssum"], rel=1e-6)
    ys, xs = branch["prior_sample_coords_yx"][:, 0], branch["prior_sample_coords_yx"][:, 1]
    torch.testing.assert_close(prior[0][:, ys, xs].T, branch["prior_samples"], atol=1e-4, rtol=0)


def test_head_outputs_match_the_original(measured):
    _, _, fx, head, _, _, ties = measured
    q = fx["query_subset"]
    assert list(head["pred_masks"].shape) == fx["pred_masks_shape"]
    assert len(head["aux_outputs"]) == fx["num_aux_outputs"]
    aux0 = head["aux_outputs"][0]
    torch.testing.assert_close(aux0["pred_logits"], fx["aux0_pred_logits"], atol=1e-4, rtol=0)
    torch.testing.assert_close(aux0["pred_masks"][:, q], fx["aux0_pred_masks_subset"], atol=1e-3, rtol=0)
    torch.testing.assert_close(aux0["pred_masks"].double().sum((2, 3)), fx["aux0_pred_masks_query_sums"],
                               atol=2.0, rtol=1e-5)
    exact = torch.tensor([i for i in range(head["pred_logits"].shape[1]) if i not in ties])
    torch.testing.assert_close(head["pred_logits"][:, exact], fx["pred_logits"][:, exact], atol=1e-4, rtol=0)
    torch.testing.assert_close(head["pred_logits"], fx["pred_logits"], atol=1e-2, rtol=0)
    subset = torch.tensor([int(i) for i in q if int(i) not in ties])
    positions = [q.tolist().index(int(i)) for i in subset]
    torch.testing.assert_close(head["pred_masks"][:, subset], fx["pred_masks_subset"][:, positions], atol=1e-3, rtol=0)
    sums = head["pred_masks"].double().sum((2, 3))
    torch.testing.assert_close(sums[:, exact], fx["pred_masks_query_sums"][:, exact], atol=2.0, rtol=1e-5)
    torch.testing.assert_close(sums, fx["pred_masks_query_sums"], atol=20.0, rtol=1e-4)


def test_semantic_output_matches_the_original(measured, fixture_a):
    _, _, fx, _, _, out, ties = measured
    assert set(out) == {"sem_seg"}
    sem_seg = out["sem_seg"]
    assert tuple(sem_seg.shape) == (150, fixture_a["height"], fixture_a["width"]) and sem_seg.dtype == torch.float32
    ys, xs = fx["sample_coords_yx"][:, 0], fx["sample_coords_yx"][:, 1]
    samples = sem_seg[:, ys, xs].T
    torch.testing.assert_close(samples, fx["sem_seg_samples"], atol=1e-3 if ties else 1e-4, rtol=SAMPLE_RTOL)
    assert ((samples - fx["sem_seg_samples"]).abs() > 1e-4).float().mean().item() <= 1e-3
    torch.testing.assert_close(sem_seg.double().sum((1, 2)), fx["sem_seg_class_sums"], rtol=1e-4 if ties else 1e-5,
                               atol=1e-2)
    assert (sem_seg.argmax(0) != fx["sem_seg_argmax"].long()).sum().item() <= 300
