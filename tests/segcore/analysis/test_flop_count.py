"""segcore.analysis.flop_count, model_inputs and parameter_count on a tiny list[dict] model."""
import pytest
import torch
from torch import nn

from segcore.analysis import (FlopCount, ImageInputWrapper, count_flops, count_parameters, fixed_input_size,
                              flop_inputs, synthetic_inputs)
from segcore.config import get_cfg
from segcore.structures import Instances

CLASSES = 4


class TinySegmentor(nn.Module):
    """conv3x3 (3 -> CLASSES) on the image, the scores at (height, width), and Instances."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, CLASSES, 3, padding=1)
        self.classifier = nn.Linear(CLASSES, CLASSES)

    def forward(self, batched_inputs):
        results = []
        for x in batched_inputs:
            scores = self.conv(x["image"].float()[None])
            scores = nn.functional.interpolate(scores, size=(x["height"], x["width"]), mode="bilinear")[0]
            instances = Instances((x["height"], x["width"]))
            instances.scores = self.classifier(scores.mean((1, 2)))
            results.append({"sem_seg": scores, "instances": instances})
        return results


def _expected_flops(h, w, out_h, out_w):
    conv = CLASSES * h * w * 3 * 3 * 3  # one multiply-add per output element x input channel x tap
    upsample = 4 * CLASSES * out_h * out_w  # bilinear: 4 per output element
    return conv + upsample + CLASSES * CLASSES


def test_image_input_wrapper_returns_every_output_tensor():
    model = TinySegmentor().eval()
    outputs = ImageInputWrapper(model, 6, 10)(torch.zeros(3, 3, 5, dtype=torch.uint8))
    assert [tuple(t.shape) for t in outputs] == [(CLASSES,), (CLASSES, 6, 10)]  # instances.scores, sem_seg


def test_count_flops_by_hand():
    inputs = synthetic_inputs(2, 16, 24) + [{"image": torch.zeros(3, 8, 8, dtype=torch.uint8), "height": 4,
                                            "width": 12}]
    result = count_flops(TinySegmentor(), inputs, max_depth=1)
    assert isinstance(result, FlopCount)
    expected = [_expected_flops(16, 24, 16, 24)] * 2 + [_expected_flops(8, 8, 4, 12)]
    assert result.gflops == pytest.approx([e / 1e9 for e in expected])
    assert result.mean_gflops == pytest.approx(sum(expected) / 3 / 1e9)
    assert result.std_gflops > 0
    assert result.by_operator["conv"] == pytest.approx(CLASSES * 27 * (16 * 24 * 2 + 64) / 3 / 1e9)
    assert "conv" in result.table
    assert result.unsupported_ops == {"aten::mean": 3}  # no formula: reported, once per input


def test_count_flops_needs_inputs():
    with pytest.raises(ValueError, match="no inputs"):
        count_flops(TinySegmentor(), [])


def test_synthetic_inputs():
    a, b = synthetic_inputs(2, 5, 7)
    assert a["image"].shape == (3, 5, 7) and a["image"].dtype == torch.uint8
    assert (a["height"], a["width"]) == (5, 7)
    assert not torch.equal(a["image"], b["image"])
    assert torch.equal(synthetic_inputs(1, 5, 7)[0]["image"], a["image"])  # reproducible
    with pytest.raises(ValueError, match="at least 1"):
        synthetic_inputs(0, 5, 7)
    with pytest.raises(ValueError, match="1x1"):
        synthetic_inputs(1, 0, 7)


def test_flop_inputs_and_fixed_input_size():
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TEST = 40
    cfg.DATASETS.TEST = ()
    inputs, source = flop_inputs(cfg, 2)  # no test set: INPUT.MIN_SIZE_TEST squares
    assert source == "synthetic" and [tuple(x["image"].shape) for x in inputs] == [(3, 40, 40)] * 2
    inputs, source = flop_inputs(cfg, 1, (24, 36))
    assert source == "synthetic" and tuple(inputs[0]["image"].shape) == (3, 24, 36)
    with pytest.raises(ValueError, match="at least 1"):
        flop_inputs(cfg, 0)
    with pytest.raises(ValueError, match="relative_range"):  # the default crop is relative
        fixed_input_size(cfg)
    cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE = "absolute", [512, 512]
    assert fixed_input_size(cfg) == (512, 512)


def test_count_parameters():
    model = TinySegmentor()
    result = count_parameters(model, max_depth=1)
    assert result.total == CLASSES * 27 + CLASSES + CLASSES * CLASSES + CLASSES
    assert "conv" in result.table and "classifier" in result.table
