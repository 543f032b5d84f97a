"""tools/benchmark.py, end to end on tiny configs, one timed iteration: the command line's tasks,
its printed table, profile and load lines, the JSON report, the plot and the errors. The
measurements themselves are tested in ``tests/segcore/benchmark`` and, for the Hugging Face ports,
``tests/mask2former/test_benchmark_hf.py``."""
import json
import os
import subprocess
import sys

import pytest

from tests.e2e_utils import load_script
from tests.paths import TOOLS
from tests.segcore.benchmark.tiny_configs import M2F, MASKFORMER, TINY


@pytest.fixture(scope="module")
def bench_tool():
    return load_script("benchmark_cli", "tools/benchmark.py")


def _run(bench_tool, config, *args, opts=()):
    return bench_tool.main(["--config-file", config, "--iters", "1", "--warmup", "1", "--threads", "2", *args,
                           "--opts", *TINY, *opts])


def test_inference_against_hugging_face_with_profile(bench_tool, tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "reports" / "report.json"
    report = _run(bench_tool, M2F, "--input-size", "64", "96", "--compare", "hf", "--json", str(out),
                  "--profile", "--profile-rows", "3", "--label", "tiny M2F")
    results = report["results"]
    ours, hf = results["this project"], results["Hugging Face transformers"]
    assert ours["outputs"] == hf["outputs"] == ["sem_seg"] and "converted" in hf["weights"]
    assert len(ours["profile"]) == len(hf["profile"]) == 3 and results["input"] == "random 64x96 images"
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch_threads"] == 2 and len(saved["load_average_before"]) == 3
    assert saved["args"]["compare"] == "hf" and saved["label"] == "tiny M2F"
    assert saved["results"]["this project"]["median_s"] == ours["median_s"]
    printed = capsys.readouterr().out
    assert "| this project |" in printed and "| Hugging Face transformers |" in printed
    assert "profile of one call, this project (self time):" in printed
    assert "profile of one call, Hugging Face transformers (self time):" in printed
    assert printed.rstrip().splitlines()[-1].startswith("load average (1, 5, 15 min) before: ")

    png = tmp_path / "latency.png"
    assert bench_tool.main(["--plot", str(png), "--from-json", str(out)]) == {"plot": str(png)}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"Wrote {png}" in capsys.readouterr().out


def test_train_step(bench_tool, capsys):
    report = _run(bench_tool, M2F, "--task", "train", "--batch-size", "2", "--input-size", "64", "64")
    entry = report["results"]["this project"]
    assert entry["batch_size"] == 2 and entry["iters"] == 1 and entry["median_s_per_iter"] > 0
    assert "| implementation | median s/iter |" in capsys.readouterr().out


def test_data_loader(bench_tool, quickstart_root, monkeypatch, capsys):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    report = _run(bench_tool, MASKFORMER, "--task", "data", "--dataset", "quickstart_sem_seg_val",
                  opts=["SOLVER.IMS_PER_BATCH", "2"])
    entry = report["results"]["this project"]
    assert entry["batch_size"] == 2 and entry["datasets"] == ["quickstart_sem_seg_val"]
    assert "| implementation | median s/batch | images/s |" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--precision", "fp16"], "fp16 needs --device cuda"),
    (["--iters", "0"], ">= 1"),
    (["--task", "train", "--compare", "hf"], "inference only"),
    ([], "--input-size H W or --dataset"),
])
def test_errors(bench_tool, args, message):
    with pytest.raises(ValueError, match=message):
        _run(bench_tool, M2F, *args, opts=["DATASETS.TEST", "()"])
    with pytest.raises(ValueError, match="--config-file is required"):
        bench_tool.main([])


def test_the_script_reports_errors_in_one_line():
    result = subprocess.run([sys.executable, os.path.join(TOOLS, "benchmark.py"), "--config-file", M2F,
                             "--precision", "fp16"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --precision fp16 needs --device cuda; use bf16 on the CPU"
