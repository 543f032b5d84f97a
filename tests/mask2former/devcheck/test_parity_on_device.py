"""Mask2Former R50 ADE20K against the original implementation's measured outputs on the device the
device check names: ``SEGCORE_DEVCHECK_DEVICE`` (default ``cuda``, skipped without a GPU; the check's
``--cpu`` mode sets ``cpu``). The reference ``m2f_ade20k_sem_R50``: input A, name-seeded weights,
the original's arithmetic (``MODEL.FUSED_ATTENTION False``), TF32 off, so the GPU's float32 is
compared with the CPU measurements at the reference README's tolerances (logits 1e-4, masks 1e-3).

The comparisons are the CPU parity test's own (``tests/mask2former/test_mask2former_parity.py``),
ties in the masked attention included; the largest differences are recorded as test properties
(pytest's ``record_property``), which the device check's report shows.
"""
import contextlib
import os

import pytest
import torch

import tests.mask2former.test_mask2former_parity as parity
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.masked_attention_ties import tie_queries
from tests.paths import CONFIGS
from tests.reference_utils import fill_name_seeded, load_fixture

DEVICE = os.environ.get("SEGCORE_DEVCHECK_DEVICE", "cuda")
NAME = "m2f_ade20k_sem_R50"


@contextlib.contextmanager
def tf32_off():
    """float32 matrix products and convolutions in full float32 (no TF32 tensor-core rounding)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def to_cpu(obj):
    """Tensors, in nested dicts and lists, moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def largest_differences(head: dict, out: dict, fx: dict, ties) -> dict:
    """The largest absolute differences from the reference, on what the tolerances apply to
    strictly (queries that are not ties)."""
    q = fx["query_subset"]
    aux0 = head["aux_outputs"][0]
    exact = [i for i in range(head["pred_logits"].shape[1]) if i not in ties]
    subset = [int(i) for i in q if int(i) not in ties]
    columns = [list(q).index(i) for i in subset]
    ys, xs = fx["sample_coords_yx"][:, 0], fx["sample_coords_yx"][:, 1]
    return {
        "aux0_logits": (aux0["pred_logits"] - fx["aux0_pred_logits"]).abs().max().item(),
        "aux0_masks": (aux0["pred_masks"][:, q] - fx["aux0_pred_masks_subset"]).abs().max().item(),
        "final_logits": (head["pred_logits"][:, exact] - fx["pred_logits"][:, exact]).abs().max().item(),
        "final_masks": (head["pred_masks"][:, subset] - fx["pred_masks_subset"][:, columns]).abs().max().item(),
        "sem_seg_samples": (out["sem_seg"][:, ys, xs].T - fx["sem_seg_samples"]).abs().max().item(),
        "ties": len(ties),
    }


@pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no GPU")
def test_ade20k_r50_matches_the_original_on_the_device(record_property):
    config, overrides = parity.REFERENCES[NAME]
    cfg = setup_cfg(os.path.join(CONFIGS, *config.split("/")),
                    ["MODEL.WEIGHTS", "", "MODEL.DEVICE", DEVICE, "MODEL.FUSED_ATTENTION", "False", *overrides])
    assert cfg.MODEL.DEVICE == DEVICE
    fx = load_fixture(f"{NAME}_A.pth")
    inputs = [{"image": fx["image"], "height": fx["height"], "width": fx["width"]}]
    with tf32_off(), torch.no_grad():
        model = build_model(cfg)
        fill_name_seeded(model)
        model.eval()
        images = model.preprocess_image(inputs)
        head, ties = tie_queries(lambda: model.sem_seg_head(model.backbone(images.tensor)))
        out = model(inputs)[0]
    head, out = to_cpu(head), to_cpu(out)
    record_property("device", torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu")
    for key, value in largest_differences(head, out, fx, ties).items():
        record_property(key, value)
    assert len(ties) <= parity.MAX_TIES, f"too many queries with a masked-attention logit near 0: {ties}"
    measured = (NAME, model, fx, head, out, ties)
    parity.test_head_outputs_match_the_original(measured)
    parity.test_semantic_output_matches_the_original(measured)
