"""The report's summary (one screen), its JSON (written whole or not at all) and the packed logs."""
import json
import os
import tarfile

from segcore.devcheck import StepResult
from segcore.devcheck.report import count_statuses, pack_logs, render_summary, write_json

GPU = {"name": "NVIDIA H100 80GB HBM3", "arch": "9.0", "memory_gib": 79.2}


def _results():
    return [StepResult("build", "kernels", "prepare", "passed", 98.4, headline="cpu kernel loads, cuda kernel loads"),
            StepResult("kernel_tests", "tests", "checks", "failed", 71.0, reason="2 failed, 0 errors: test_a, test_b",
                       headline="85 passed, 2 failed", log="logs/kernel_tests.log",
                       log_tail=[f"line {i}" for i in range(15)]),
            StepResult("train_fp16", "training", "checks", "timed_out", 300.0,
                       reason="stopped after 300 s (time limit)", log="logs/train_fp16.log", log_tail=["iter 150"]),
            StepResult("bench_infer_r50_compile_b8", "bench", "benchmarks", "skipped",
                       reason="out of time: 20 s of the budget left, the step needs 90 s " + "x" * 300)]


def test_the_summary_has_a_line_per_step_the_trouble_and_the_counts_on_one_screen():
    results = _results()
    report = {"mode": "gpu", "machine": {"gpu": GPU, "cpu_count": 16, "torch": "2.11.0+cu130", "python": "3.12.3"},
              "seconds": 498.7, "budget_s": 510, "steps": results, "counts": count_statuses(results),
              "report_path": "/out/report.json"}
    text = render_summary(report, width=110)
    lines = text.splitlines()
    assert lines[0] == ("device check (gpu) on NVIDIA H100 80GB HBM3 (sm 9.0, 79.2 GiB), 16 cores, torch 2.11.0+cu130, "
                        "Python 3.12.3")
    assert all(len(line) <= 110 for line in lines) and len(lines) < 40
    assert lines[2].startswith("ok   build") and "cuda kernel loads" in lines[2]
    assert lines[3].startswith("FAIL kernel_tests") and "2 failed" in lines[3]
    assert lines[4].startswith("TIME train_fp16") and lines[5].startswith("skip bench_infer_r50_compile_b8")
    assert lines[5].endswith("...")
    assert "kernel_tests: 2 failed, 0 errors: test_a, test_b (log: logs/kernel_tests.log)" in text
    assert "    line 14" in text and "    line 11" not in text  # the last three lines of the log
    assert lines[-1] == "1 passed, 1 failed, 1 timed out, 1 skipped; report: /out/report.json"


def test_a_check_that_could_not_run_says_why():
    text = render_summary({"mode": "gpu", "machine": {"cpu_count": 2, "torch": "2.13", "python": "3.11"},
                           "error": "no CUDA GPU is visible to torch: run with --cpu", "steps": []})
    assert "CPU only" in text and "ERROR: no CUDA GPU" in text and "0 passed, 0 failed" in text


def test_the_json_report_holds_the_results_and_is_replaced_whole(tmp_path):
    path = str(tmp_path / "report.json")
    write_json(path, {"steps": _results(), "mode": "cpu"})
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["steps"][1]["reason"].startswith("2 failed") and saved["steps"][0]["details"] == {}
    assert os.listdir(tmp_path) == ["report.json"]


def test_logs_are_packed_into_one_archive(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "build.log").write_text("built")
    archive = pack_logs(str(logs), str(tmp_path / "logs.tar.gz"))
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["logs", "logs/build.log"]
        assert tar.extractfile("logs/build.log").read() == b"built"
