"""The four reference models of the parity tests (``../shared/reference/``: name-seeded weights, input
A) as the export tests build them, and the comparisons they share.

Each model runs the original's arithmetic (``MODEL.FUSED_ATTENTION False``) and the test resize
keeps input A (240 x 328) at its size (``INPUT.MIN_SIZE_TEST 240``), so the exported graph, the
eager network and :class:`segcore.engine.DefaultPredictor` see the same pixels.
"""
import os

import torch

from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.masked_attention_ties import tie_queries
from tests.paths import CONFIGS
from tests.reference_utils import fill_name_seeded, load_fixture

SEMASK_TINY = ["MODEL.SWIN.EMBED_DIM", "96", "MODEL.SWIN.DEPTHS", "[2, 2, 6, 2]", "MODEL.SWIN.NUM_HEADS",
               "[3, 6, 12, 24]", "MODEL.SWIN.WINDOW_SIZE", "7", "MODEL.SWIN.SEM_WINDOW_SIZE", "7",
               "MODEL.SWIN.NUM_SEM_BLOCKS", "1", "MODEL.SWIN.PRETRAIN_IMG_SIZE", "224"]
#: reference name -> (config under configs/, overrides of the reference measurement, fixture with input A)
REFERENCES = {
    "mf_ade20k_sem_R50": ("ade20k-150/maskformer_R50_bs16_160k.yaml", [], "mf_ade20k_sem_R50_A.pth"),
    "m2f_ade20k_sem_R50": ("ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml", [],
                           "m2f_ade20k_sem_R50_A.pth"),
    "m2f_coco_pan_R50": ("coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml",
                         ["MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0",
                          "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", "0.5"], "m2f_coco_pan_R50_A.pth"),
    "semask_mf_ade_SwinT": ("ade20k-150/semask_swin/maskformer_semask_swin_large_IN21k_384_bs16_160k_res640.yaml",
                            SEMASK_TINY, "semask_ade_SwinT_A.pth"),
}


def reference_cfg(name: str):
    config, overrides, _ = REFERENCES[name]
    return setup_cfg(os.path.join(CONFIGS, *config.split("/")),
                     ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.FUSED_ATTENTION", "False",
                      "INPUT.MIN_SIZE_TEST", "240", *overrides])


def reference_model(name: str):
    """(cfg, the model in eval mode with the name-seeded weights, input A uint8 (3, 240, 328) in the config's order)."""
    cfg = reference_cfg(name)
    model = build_model(cfg)
    fill_name_seeded(model)
    model.eval()
    image = load_fixture(REFERENCES[name][2])["image"]
    return cfg, model, image


def network_outputs(network, image: torch.Tensor):
    """The eager network's outputs on a float (1, 3, H, W) image and the masked-attention tie queries
    (none for models without masked attention)."""
    from mask2former.modeling.transformer_decoder import MultiScaleMaskedTransformerDecoder

    with torch.no_grad():
        if any(isinstance(m, MultiScaleMaskedTransformerDecoder) for m in network.modules()):
            outputs, ties = tie_queries(lambda: network(image))
        else:
            outputs, ties = network(image), []
    return [o.detach() for o in outputs], ties


def assert_head_outputs_close(got, expected, ties):
    """pred_logits within 1e-4 and pred_masks within 1e-3, every query but the masked-attention ties;
    the ties' logits within 1e-2 (the parity tests' rule, tests/masked_attention_ties.py)."""
    logits, masks = torch.as_tensor(got[0]), torch.as_tensor(got[1])
    assert logits.shape == expected[0].shape and masks.shape == expected[1].shape
    exact = torch.tensor([q for q in range(logits.shape[1]) if q not in ties], dtype=torch.long)
    torch.testing.assert_close(logits[:, exact], expected[0][:, exact], atol=1e-4, rtol=0)
    torch.testing.assert_close(masks[:, exact], expected[1][:, exact], atol=1e-3, rtol=0)
    torch.testing.assert_close(logits, expected[0], atol=1e-2, rtol=0)
    assert torch.isfinite(masks).all()


def assert_labels_equal_away_from_ties(scores, expected_scores, margin: float):
    """The arg max over classes of (K, H, W) ``scores`` equals ``expected_scores``' wherever the
    expected top two classes are more than ``margin`` apart (closer pixels are ties)."""
    top2 = expected_scores.topk(2, dim=0).values
    decided = (top2[0] - top2[1]) > margin
    assert decided.float().mean() > 0.9
    assert torch.equal(scores.argmax(0)[decided], expected_scores.argmax(0)[decided])
