"""tools/analyze_model.py: the command line on the test-only StubConvSegmentor (tests/stub_meta_arch.py),
and end to end on the real MaskFormer and Mask2Former configs (random weights).

Paper figures (MaskFormer, Cheng et al., NeurIPS 2021, Table 1, ADE20K-150, single image of
512 x 512): MaskFormer R50 41 M parameters, 53 GFLOPs; Swin-T 42 M, 55 GFLOPs. The counts must be
within 5 %. (Mask2Former's COCO figures are averages over validation images: MODEL_ZOO.md reports
ours beside them.)
"""
import importlib.util
import logging
import os

import cv2
import numpy as np
import pytest

from tests.paths import CONFIGS, REPO_ROOT
from tests.stub_meta_arch import write_stub_config

NUM_CLASSES = 4
SIZE = 32  # INPUT.MIN_SIZE_TEST of the stub config
PAPER_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def analyze():
    spec = importlib.util.spec_from_file_location("segcore_analyze_model", os.path.join(REPO_ROOT, "tools",
                                                                                        "analyze_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cfg_file(tmp_path):
    return write_stub_config(tmp_path, num_classes=NUM_CLASSES, min_size_test=SIZE)


def _conv_macs(h, w):
    # fvcore counts one multiply-add per (output element x input channel x kernel tap)
    return NUM_CLASSES * h * w * 3 * 3 * 3


def test_parameter_count_equals_numel_sum(analyze, cfg_file):
    from segcore.modeling import build_model

    res = analyze.main(["--config-file", cfg_file, "--tasks", "parameter", "--max-depth", "2"])
    assert set(res) == {"parameter"}
    cfg = analyze.setup_cfg(analyze.get_parser().parse_args(["--config-file", cfg_file]))
    expected = sum(p.numel() for p in build_model(cfg).parameters())
    assert expected == NUM_CLASSES * 27 + NUM_CLASSES
    assert res["parameter"]["total"] == expected
    assert "conv.weight" in res["parameter"]["table"] and "(4, 3, 3, 3)" in res["parameter"]["table"]


def test_flops_on_synthetic_inputs(analyze, cfg_file):
    res = analyze.main(["--config-file", cfg_file, "--num-inputs", "2", "--opts", "MODEL.PIXEL_STD", "[32.0, 32.0, 32.0]"])
    assert set(res) == {"parameter", "flop"}
    flop = res["flop"]
    assert flop["source"] == "synthetic" and len(flop["gflops"]) == 2 and flop["input_size"] == (SIZE, SIZE)
    assert flop["std_gflops"] == 0
    assert flop["by_operator"]["conv"] == pytest.approx(_conv_macs(SIZE, SIZE) / 1e9)
    # the resize to the output size: 4 FLOPs per output element
    assert flop["mean_gflops"] == pytest.approx((_conv_macs(SIZE, SIZE) + 4 * NUM_CLASSES * SIZE * SIZE) / 1e9)
    assert "conv" in flop["table"]
    # softmax, sub, div: not counted by Detectron2's convention, and not reported as missing a formula
    assert not flop["unsupported_ops"]


def test_input_size_options(analyze, cfg_file):
    flop = analyze.main(["--config-file", cfg_file, "--tasks", "flop", "--input-size", "24", "40"])["flop"]
    assert flop["input_size"] == (24, 40) and flop["by_operator"]["conv"] == pytest.approx(_conv_macs(24, 40) / 1e9)
    flop = analyze.main(["--config-file", cfg_file, "--tasks", "flop", "--input-size", "24"])["flop"]
    assert flop["input_size"] == (24, 24)
    flop = analyze.main(["--config-file", cfg_file, "--tasks", "flop", "--use-fixed-input-size", "--opts",
                         "INPUT.CROP.TYPE", "absolute", "INPUT.CROP.SIZE", "(16, 16)"])["flop"]
    assert flop["input_size"] == (16, 16)
    for bad in (["--input-size", "0"], ["--input-size", "1", "2", "3"], ["--use-fixed-input-size"],  # relative crop
                ["--use-fixed-input-size", "--input-size", "8"]):
        with pytest.raises(SystemExit):
            analyze.main(["--config-file", cfg_file, "--tasks", "flop", *bad])


def test_flops_on_dataset_images_and_quiet_fvcore(analyze, cfg_file, tmp_path):
    from segcore.data import DatasetCatalog

    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.full((40, 80, 3), 90, np.uint8))
    name = "_analyze_model_test_images"
    DatasetCatalog.register(name, lambda: [{"file_name": str(img), "height": 40, "width": 80, "image_id": 0}])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    fv_logger = logging.getLogger("fvcore")
    fv_logger.addHandler(handler)
    try:
        cfg = analyze.setup_cfg(analyze.get_parser().parse_args(
            ["--config-file", cfg_file, "--opts", "DATASETS.TEST", f"('{name}',)"]))
        flop = analyze.do_flop(cfg, num_inputs=3)
    finally:
        fv_logger.removeHandler(handler)
        DatasetCatalog.remove(name)
    assert flop["source"] == "dataset" and len(flop["gflops"]) == 1  # the dataset has one image
    # the test mapper resizes the 40x80 image to a shorter edge of 32: 32x64
    assert flop["by_operator"]["conv"] == pytest.approx(_conv_macs(32, 64) / 1e9)
    assert not [r for r in records if r.levelno >= logging.WARNING and "nsupported" in r.getMessage()]


def test_num_inputs_must_be_positive(analyze, cfg_file):
    with pytest.raises(SystemExit):
        analyze.main(["--config-file", cfg_file, "--num-inputs", "0"])


def _assert_nothing_heavy_uncounted(flop):
    """No product, attention or deformable attention among the operators without a formula."""
    heavy = [op for op in flop["unsupported_ops"]
             if any(k in op for k in ("mm", "matmul", "einsum", "attention", "attn", "conv", "linear"))]
    assert not heavy, heavy


@pytest.mark.parametrize("config, paper_params_m, paper_gflops", [
    ("ade20k-150/maskformer_R50_bs16_160k.yaml", 41, 53),
    ("ade20k-150/swin/maskformer_swin_tiny_bs16_160k.yaml", 42, 55),
], ids=["R50", "Swin-T"])
def test_maskformer_ade20k_counts_match_the_paper(analyze, config, paper_params_m, paper_gflops):
    """The papers' method (the original tools' ``--use-fixed-input-size``: one 512x512 image, the
    whole model in eval mode, semantic inference included) within 5 % of MaskFormer's Table 1."""
    res = analyze.main(["--config-file", os.path.join(CONFIGS, config), "--tasks", "parameter", "flop",
                        "--use-fixed-input-size", "--max-depth", "1", "--opts", "MODEL.WEIGHTS", ""])
    flop = res["flop"]
    assert flop["input_size"] == (512, 512) and flop["source"] == "synthetic"
    assert res["parameter"]["total"] / 1e6 == pytest.approx(paper_params_m, rel=PAPER_TOLERANCE)
    assert flop["mean_gflops"] == pytest.approx(paper_gflops, rel=PAPER_TOLERANCE)
    # the semantic inference, (K=150, N=100) @ (N, 512 * 512), by the fast post-processing's in-place product
    assert flop["by_operator"]["mm"] == pytest.approx(150 * 100 * 512 * 512 / 1e9)
    assert flop["by_operator"]["scaled_dot_product_attention"] > 0
    _assert_nothing_heavy_uncounted(flop)


def test_mask2former_command_line_counts_attention_by_hand(analyze):
    """Mask2Former R50 (COCO panoptic: semantic, panoptic and instance outputs) on a 128x192 input:
    the fused attention, the deformable attention and the semantic product against hand counts."""
    config = os.path.join(CONFIGS, "coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml")
    flop = analyze.main(["--config-file", config, "--tasks", "flop", "--input-size", "128", "192", "--max-depth", "1",
                         "--opts", "MODEL.WEIGHTS", ""])["flop"]
    ops = flop["by_operator"]
    # levels at strides 32, 16, 8: 4x6, 8x12, 16x24 tokens; 8 heads of 32 channels
    tokens = [4 * 6, 8 * 12, 16 * 24]
    # pixel decoder: 6 encoder layers, every token a query, 3 levels x 4 points, 5 multiply-adds per channel
    assert ops["ms_deform_attn"] * 1e9 == pytest.approx(6 * sum(tokens) * 8 * 3 * 4 * 32 * 5)
    # transformer decoder: 9 layers, each masked cross-attention to one level (coarsest first, in turn)
    # then self-attention of the 100 queries; Q K^T and the weighted sum: 2 x 32 per head and pair
    cross = sum(8 * 100 * tokens[i % 3] * 64 for i in range(9))
    self_attention = 9 * 8 * 100 * 100 * 64
    assert ops["scaled_dot_product_attention"] * 1e9 == pytest.approx(cross + self_attention)
    # semantic inference: (K=133, N=100) @ (N, 128 * 192)
    assert ops["mm"] * 1e9 == pytest.approx(133 * 100 * 128 * 192)
    _assert_nothing_heavy_uncounted(flop)
