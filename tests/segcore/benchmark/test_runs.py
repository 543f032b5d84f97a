"""segcore.benchmark's runs on tiny configs, one timed call: inference (with a second implementation
timed alternately), a training step, the data loader; the entries each report."""
import numpy as np
import pytest

from segcore.benchmark import InferenceRunner, OurInference, run_data, run_inference, run_train
from tests.segcore.benchmark.tiny_configs import M2F, MASKFORMER, tiny


class EchoRunner(InferenceRunner):
    """A second implementation: marks its 'network' and returns the images' sizes."""

    name = "echo"

    def __init__(self, *, cfg, our_model, seed):
        super().__init__(device_type="cpu")
        self.seed, self.calls = seed, 0

    def describe(self):
        return {"outputs": ["sizes"], "seed": self.seed}

    def __call__(self, images):
        self.calls += 1
        self.mark("network_start")
        self.mark("network_end")
        return [image.shape for image in images]


def _check_entry(entry):
    assert 0 < entry["min_s"] <= entry["median_s"] <= entry["max_s"] and entry["calls"] == 1
    assert entry["throughput_img_s"] == pytest.approx(1 / entry["median_s"])
    assert entry["peak_memory_mb"] > 0 and entry["memory_measure"].startswith("peak_rss")
    assert entry["network_median_s"] >= 0 and entry["first_call_s"] > 0


def test_inference_with_a_second_implementation():
    cfg, settings = tiny(M2F, input_size=(64, 96), batch_size=2, seed=3, profile=True, profile_rows=4)
    results = run_inference(cfg, settings, compare=EchoRunner)
    ours, echo = results["this project"], results["echo"]
    _check_entry(ours)
    _check_entry(echo)
    assert ours["outputs"] == ["sem_seg"] and echo["outputs"] == ["sizes"] and echo["seed"] == 3
    assert results["ratio_ours_to_hf"] == pytest.approx(ours["median_s"] / echo["median_s"])
    assert results["input"] == "random 64x96 images"
    assert len(ours["profile"]) == 4 and echo["profile"] == []  # the echo runs no operator


def test_our_runner_on_a_batch_equals_one_image_at_a_time():
    cfg, _ = tiny(MASKFORMER)
    runner = OurInference(cfg=cfg)
    images = [np.random.default_rng(i).integers(0, 256, (64, 80, 3), dtype=np.uint8) for i in range(2)]
    batch = runner(images)
    assert {"network_start", "network_end"} <= set(runner.marks)
    for image, out in zip(images, batch):
        single = runner([image])[0]["sem_seg"]
        assert out["sem_seg"].shape == single.shape == (single.shape[0], 64, 80)
        assert (out["sem_seg"].argmax(0) == single.argmax(0)).float().mean() > 0.99


def test_inference_needs_images():
    cfg, settings = tiny(M2F, opts=["DATASETS.TEST", "()"])
    with pytest.raises(ValueError, match="--input-size H W or --dataset"):
        run_inference(cfg, settings)


def test_train_step_with_profile():
    cfg, settings = tiny(M2F, train=True, batch_size=2, input_size=(64, 64), profile=True, profile_rows=3)
    entry = run_train(cfg, settings)["this project"]
    assert 0 < entry["min_s_per_iter"] <= entry["median_s_per_iter"] <= entry["max_s_per_iter"]
    assert entry["batch_size"] == 2 and entry["iters"] == 1 and entry["peak_memory_mb"] > 0
    assert entry["optimizer"] == "ADAMW" and entry["input"] == "random 64x64 images with random rectangles"
    rows = entry["profile"]
    assert len(rows) == 3 and rows[0]["self_s"] >= rows[-1]["self_s"] and all(r["op"] for r in rows)


def test_train_step_in_bfloat16():
    cfg, settings = tiny(M2F, train=True, input_size=(64, 64), precision="bf16")
    assert run_train(cfg, settings)["this project"]["median_s_per_iter"] > 0


def test_data_loader_and_dataset_images(quickstart_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    cfg, settings = tiny(MASKFORMER, opts=["SOLVER.IMS_PER_BATCH", "2"])
    entry = run_data(cfg, settings)["this project"]
    assert entry["batch_size"] == 2 and entry["images_per_s"] > 0 and entry["datasets"] == ["quickstart_sem_seg_train"]
    assert entry["min_s_per_batch"] <= entry["median_s_per_batch"] <= entry["max_s_per_batch"]
    results = run_inference(cfg, settings)  # images of DATASETS.TEST[0]
    assert results["input"] == "images of quickstart_sem_seg_val"
