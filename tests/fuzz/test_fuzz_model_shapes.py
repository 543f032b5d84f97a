"""Extreme input sizes to ``model(batched_inputs)`` in eval mode: tiny MaskFormer (ResNet-18),
Mask2Former (deformable pixel decoder, masked attention) and a Swin-backbone MaskFormer.

1x1, 1x4000, 4000x1, larger than the training crop, smaller than the Swin window and a batch
of mixed sizes: every output has the input's size (``"height"`` x ``"width"``), finite values and
the documented types. The models are 32 channels wide, so an input of at most 32x32 pixels gives
stride-32 GroupNorm inputs with one value per group (see ``segcore.layers.GroupNorm``).
"""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.fuzz import fuzz_settings
from tests.paths import CONFIGS

NUM_CLASSES = 3
QUICKSTART = os.path.join(CONFIGS, "quickstart")
TINY = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(NUM_CLASSES),
        "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
        "MODEL.MASK_FORMER.HIDDEN_DIM", "32", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "4",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "32", "MODEL.MASK_FORMER.NHEADS", "2", "MODEL.MASK_FORMER.DEC_LAYERS", "2"]
MASK2FORMER = ["MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS", "2",
               "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD", "32",
               "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1",
               "MODEL.MASK_FORMER.TEST.PANOPTIC_ON", "True", "MODEL.MASK_FORMER.TEST.INSTANCE_ON", "True"]
SWIN_WINDOW = 7
SWIN = ["MODEL.BACKBONE.NAME", "D2SwinTransformer", "MODEL.SWIN.EMBED_DIM", "8", "MODEL.SWIN.DEPTHS", "[2, 2, 2, 2]",
        "MODEL.SWIN.NUM_HEADS", "[1, 1, 2, 2]", "MODEL.SWIN.WINDOW_SIZE", str(SWIN_WINDOW),
        "MODEL.SWIN.DROP_PATH_RATE", "0.0"]
MODELS = {
    "maskformer_R18": ("maskformer_R18_quickstart.yaml", TINY),
    "mask2former_R18": ("mask2former_R18_quickstart.yaml", TINY + MASK2FORMER),
    "maskformer_swin": ("maskformer_R18_quickstart.yaml", TINY + SWIN),
}
CROP = 128  # the quickstart configs' INPUT.CROP.SIZE
EXTREME_SHAPES = [(1, 1), (1, 4000), (4000, 1), (CROP + 45, CROP + 3), (SWIN_WINDOW - 2, SWIN_WINDOW - 1), (2, 33)]

_BUILT: dict = {}


def _model(name: str):
    """The eval-mode model, built once per session (a hypothesis test cannot take a module fixture)."""
    if name not in _BUILT:
        config, opts = MODELS[name]
        torch.manual_seed(0)
        _BUILT[name] = build_model(setup_cfg(os.path.join(QUICKSTART, config), opts)).eval()
    return _BUILT[name]


def _run(name: str, shapes, out_shapes=None):
    gen = torch.Generator().manual_seed(sum(h * 7 + w for h, w in shapes))
    inputs = []
    for i, (h, w) in enumerate(shapes):
        out_h, out_w = (h, w) if out_shapes is None else out_shapes[i]
        image = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
        inputs.append({"image": image, "height": out_h, "width": out_w})
    with torch.no_grad():
        outputs = _model(name)(inputs)
    assert len(outputs) == len(inputs)
    for output, x in zip(outputs, inputs):
        _check_output(output, x["height"], x["width"])


def _check_output(output: dict, h: int, w: int) -> None:
    sem = output["sem_seg"]
    assert sem.shape == (NUM_CLASSES, h, w) and sem.dtype.is_floating_point and torch.isfinite(sem).all()
    if "panoptic_seg" in output:
        pan, segments = output["panoptic_seg"]
        assert pan.shape == (h, w) and pan.dtype == torch.int32
        ids = set(pan.unique().tolist()) - {0}
        assert ids == {s["id"] for s in segments}
        assert all(0 <= s["category_id"] < NUM_CLASSES for s in segments)
    if "instances" in output:
        inst = output["instances"]
        assert inst.image_size == (h, w)
        n = len(inst)
        assert inst.pred_masks.shape == (n, h, w)
        assert inst.pred_boxes.tensor.shape == (n, 4) and torch.isfinite(inst.pred_boxes.tensor).all()
        assert inst.scores.shape == (n,) and ((inst.scores >= 0) & (inst.scores <= 1)).all()
        assert ((inst.pred_classes >= 0) & (inst.pred_classes < NUM_CLASSES)).all()


@pytest.mark.parametrize("shape", EXTREME_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(MODELS))
def test_extreme_image_shapes(name, shape):
    _run(name, [shape])


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_of_mixed_sizes_and_output_sizes(name):
    # padded together to the largest; each output at its own requested size (a resized input)
    _run(name, [(1, 1), (40, 9), (17, 64)], out_shapes=[(3, 5), (40, 9), (34, 128)])


@fuzz_settings(8)
@given(name=st.sampled_from(list(MODELS)), h=st.integers(1, 70), w=st.integers(1, 70))
def test_random_small_shapes(name, h, w):
    _run(name, [(h, w)])
