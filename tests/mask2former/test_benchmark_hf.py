"""mask2former.benchmark_hf: the Hugging Face ports as a benchmark runner, timed against ours
(segcore.benchmark.run_inference) for both families, and computing the same function for Mask2Former."""
import numpy as np
import pytest
import torch

from segcore.benchmark import OurInference, run_inference
from tests.segcore.benchmark.tiny_configs import M2F, M2F_PANOPTIC, MASKFORMER, tiny

pytest.importorskip("transformers")

from mask2former.benchmark_hf import HFInference  # noqa: E402


@pytest.mark.parametrize("config,outputs,weights", [
    (M2F_PANOPTIC, ["sem_seg", "panoptic_seg"], "converted"), (MASKFORMER, ["sem_seg"], "own random"),
])
def test_timed_against_ours(config, outputs, weights):
    cfg, settings = tiny(config, input_size=(64, 96))
    results = run_inference(cfg, settings, compare=HFInference)
    ours, hf = results["this project"], results["Hugging Face transformers"]
    for entry in (ours, hf):
        assert 0 < entry["min_s"] <= entry["median_s"] <= entry["max_s"] and entry["outputs"] == outputs
        assert {"preprocess_median_s", "network_median_s", "postprocess_median_s"} <= set(entry)
    assert weights in hf["weights"] and "weights" not in ours
    assert results["ratio_ours_to_hf"] == pytest.approx(ours["median_s"] / hf["median_s"])


def test_hugging_face_port_computes_the_same_function():
    """The HF Mask2Former gets our weights converted: on a size that needs no resize or padding, its
    semantic map equals ours."""
    cfg, _ = tiny(M2F, opts=["INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96"])
    torch.manual_seed(0)
    ours = OurInference(cfg=cfg)
    hf = HFInference(cfg=cfg, our_model=ours.model, seed=0)
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    our_map = ours([image])[0]["sem_seg"].argmax(0)
    hf_map = hf([image])["sem_seg"][0]
    assert {"network_start", "network_end"} <= set(hf.marks)
    # HF post-processes at 384 x 384 before resizing back: a few border pixels may differ
    assert (our_map == hf_map).float().mean() > 0.9


def test_a_decoder_without_a_port():
    cfg, _ = tiny(M2F, opts=["MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME", "NoSuchDecoder"])
    with pytest.raises(ValueError, match="no Hugging Face port of NoSuchDecoder"):
        HFInference(cfg=cfg, our_model=None, seed=0)
