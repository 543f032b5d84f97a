"""segcore.benchmark.report: the table per task, the profile and load lines, the JSON and the plot."""
import json

import pytest

from segcore.benchmark import format_load_average, format_profile, format_table, plot, write_json

INFERENCE = {"median_s": 0.5, "min_s": 0.25, "max_s": 1.0, "throughput_img_s": 2.0, "peak_memory_mb": 100.4,
             "peak_memory_increase_mb": 20.0, "preprocess_median_s": 0.1, "network_median_s": 0.3,
             "postprocess_median_s": 0.1}


def _report(task, results, **args):
    return {"args": {"task": task, "config_file": "configs/x/m2f_tiny.yaml", "precision": "fp32", **args},
            "label": None, "results": results}


def test_tables():
    text = format_table(_report("inference", {"this project": INFERENCE, "ratio_ours_to_hf": 1.0, "input": "x"}))
    assert text.splitlines()[0].startswith("| implementation | median s/img |")
    assert text.splitlines()[2] == "| this project | 0.500 | 0.250 | 1.000 | 2.00 | 0.100 / 0.300 / 0.100 | 100 (+20) |"
    train = {"median_s_per_iter": 2.0, "min_s_per_iter": 1.0, "max_s_per_iter": 3.0, "peak_memory_mb": 10.0}
    assert format_table(_report("train", {"this project": train})).endswith("| this project | 2.000 | 1.000 | 3.000 | 10 |")
    data = {"median_s_per_batch": 0.5, "images_per_s": 4.0}
    assert format_table(_report("data", {"this project": data})).endswith("| this project | 0.500 | 4.0 |")


def test_lines():
    rows = [{"op": "aten::mm", "calls": 3, "self_s": 0.25, "self_share": 0.5}]
    assert format_profile("ours", rows) == "\nprofile of one call, ours (self time):\n   50.0%    0.250 s      3x aten::mm"
    assert format_load_average([1, 2, 3], [0.5, 0.25, 0]) == (
        "load average (1, 5, 15 min) before: 1.00, 2.00, 3.00; after: 0.50, 0.25, 0.00")


def test_json_and_plot(tmp_path):
    path = tmp_path / "sub" / "r.json"
    write_json(_report("inference", {"this project": INFERENCE, "other": dict(INFERENCE, median_s=0.75)},
                       other=object()), str(path))
    assert json.loads(path.read_text())["results"]["other"]["median_s"] == 0.75  # non-JSON values as str
    png = tmp_path / "latency.png"
    plot([str(path)], str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"args": {"task": "train"}, "results": {}}))
    with pytest.raises(ValueError, match="no inference results"):
        plot([str(train)], str(png))
