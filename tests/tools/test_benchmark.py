"""tools/benchmark.py on tiny configs, one timed iteration: the report's structure and contents,
--compare hf for both families, the train and data tasks, dataset images, the plot, the errors."""
import json
import os

import pytest
import torch

from tests.e2e_utils import load_script
from tests.paths import CONFIGS

TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "10", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "MODEL.MASK_FORMER.NHEADS", "4", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1",
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS", "4", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "256",
        "DATALOADER.NUM_WORKERS", "0"]
M2F = os.path.join(CONFIGS, "quickstart", "mask2former_R18_quickstart.yaml")
M2F_PANOPTIC = os.path.join(CONFIGS, "quickstart", "mask2former_panoptic_R18_quickstart.yaml")
MASKFORMER = os.path.join(CONFIGS, "quickstart", "maskformer_R18_quickstart.yaml")


@pytest.fixture(scope="module")
def bench_tool():
    return load_script("benchmark_cli", "tools/benchmark.py")


def _run(bench_tool, config, *args, opts=()):
    return bench_tool.main(["--config-file", config, "--iters", "1", "--warmup", "1", "--threads", "2", *args,
                           "--opts", *TINY, *opts])


def _check_inference_entry(entry, outputs):
    assert 0 < entry["min_s"] <= entry["median_s"] <= entry["max_s"]
    assert entry["throughput_img_s"] == pytest.approx(1 / entry["median_s"])
    assert entry["peak_memory_mb"] > 0 and entry["memory_measure"].startswith("peak_rss")
    assert entry["outputs"] == outputs and entry["calls"] == 1


@pytest.mark.parametrize("config,outputs", [(M2F, ["sem_seg"]), (MASKFORMER, ["sem_seg"]),
                                            (M2F_PANOPTIC, ["sem_seg", "panoptic_seg"])])
def test_inference_against_hugging_face(bench_tool, tmp_path, capsys, config, outputs):
    out = tmp_path / "report.json"
    report = _run(bench_tool, config, "--input-size", "64", "96", "--compare", "hf", "--json", str(out))
    results = report["results"]
    ours, hf = results["this project"], results["Hugging Face transformers"]
    _check_inference_entry(ours, outputs)
    _check_inference_entry(hf, outputs)
    for entry in (ours, hf):
        assert {"preprocess_median_s", "network_median_s", "postprocess_median_s"} <= set(entry)
    assert results["ratio_ours_to_hf"] == pytest.approx(ours["median_s"] / hf["median_s"])
    assert "converted" in hf["weights"] if config != MASKFORMER else "own random" in hf["weights"]
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch_threads"] == 2 and len(saved["load_average_before"]) == 3
    assert saved["results"]["this project"]["median_s"] == ours["median_s"]
    printed = capsys.readouterr().out
    assert "| this project |" in printed and "| Hugging Face transformers |" in printed and "load average" in printed


def test_hugging_face_port_computes_the_same_function(bench_tool):
    """The HF Mask2Former gets our weights converted: on a size that needs no resize or padding, its
    semantic map equals ours."""
    import numpy as np

    from segcore.engine import setup_cfg

    cfg = setup_cfg(M2F, TINY + ["MODEL.WEIGHTS", "", "MODEL.ALLOW_PARTIAL_WEIGHTS", "True", "MODEL.DEVICE", "cpu",
                                 "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96"])
    torch.manual_seed(0)
    ours = bench_tool.OurInference(cfg)
    hf = bench_tool.HFInference(cfg, ours.model, seed=0)
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    our_map = ours([image])[0]["sem_seg"].argmax(0)
    hf_map = hf([image])["sem_seg"][0]
    # HF post-processes at 384 x 384 before resizing back: a few border pixels may differ
    assert (our_map == hf_map).float().mean() > 0.9


def test_profile_lists_the_operators_with_the_most_self_time(bench_tool, capsys):
    report = _run(bench_tool, M2F, "--input-size", "64", "96", "--profile", "--profile-rows", "5")
    rows = report["results"]["this project"]["profile"]
    assert len(rows) == 5
    shares = [row["self_share"] for row in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-9
    assert all(row["calls"] >= 1 and row["self_s"] >= 0 and row["op"] for row in rows)
    assert "profile of one call, this project" in capsys.readouterr().out


def test_train_step(bench_tool, tmp_path):
    report = _run(bench_tool, M2F, "--task", "train", "--batch-size", "2", "--input-size", "64", "64",
                  "--json", str(tmp_path / "train.json"))
    entry = report["results"]["this project"]
    assert 0 < entry["min_s_per_iter"] <= entry["median_s_per_iter"] <= entry["max_s_per_iter"]
    assert entry["batch_size"] == 2 and entry["iters"] == 1 and entry["peak_memory_mb"] > 0
    assert entry["optimizer"] == "ADAMW"


def test_train_step_profile(bench_tool):
    report = _run(bench_tool, M2F, "--task", "train", "--batch-size", "1", "--input-size", "64", "64", "--profile",
                  "--profile-rows", "3")
    rows = report["results"]["this project"]["profile"]
    assert len(rows) == 3 and rows[0]["self_s"] >= rows[-1]["self_s"] and all(r["op"] for r in rows)


def test_train_step_in_bfloat16(bench_tool):
    report = _run(bench_tool, M2F, "--task", "train", "--batch-size", "1", "--input-size", "64", "64",
                  "--precision", "bf16")
    assert report["results"]["this project"]["median_s_per_iter"] > 0


def test_data_loader_and_dataset_images(bench_tool, quickstart_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    report = _run(bench_tool, MASKFORMER, "--task", "data", opts=["SOLVER.IMS_PER_BATCH", "2"])
    entry = report["results"]["this project"]
    assert entry["batch_size"] == 2 and entry["images_per_s"] > 0 and entry["datasets"] == ["quickstart_sem_seg_train"]
    report = _run(bench_tool, MASKFORMER)  # images of DATASETS.TEST[0]
    assert report["results"]["input"] == "images of quickstart_sem_seg_val"


def test_plot(bench_tool, tmp_path):
    path = tmp_path / "r.json"
    _run(bench_tool, M2F, "--input-size", "64", "64", "--json", str(path), "--label", "tiny M2F")
    png = tmp_path / "latency.png"
    bench_tool.main(["--plot", str(png), "--from-json", str(path)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"args": {"task": "train"}, "results": {}}))
    with pytest.raises(ValueError, match="no inference results"):
        bench_tool.main(["--plot", str(png), "--from-json", str(train)])


@pytest.mark.parametrize("args,message", [
    (["--precision", "fp16"], "fp16 needs --device cuda"),
    (["--task", "train", "--compare", "hf"], "inference only"),
    ([], "--input-size H W or --dataset"),
])
def test_errors(bench_tool, args, message):
    with pytest.raises(ValueError, match=message):
        _run(bench_tool, M2F, *args, opts=["DATASETS.TEST", "()"])
