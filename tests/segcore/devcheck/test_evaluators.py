"""What the device check reads from a step's files: pytest's JUnit XML (a real run), training records,
benchmark reports and result files."""
import json
import subprocess
import sys

import pytest

from segcore.devcheck.evaluators import (benchmark_verdict, json_file_verdict, junit_counts, junit_verdict,
                                         make_junit_evaluator, training_verdict)

TESTS = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_passes(record_property):
    record_property("final_logits", 2.5e-06)

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="no GPU")
def test_skipped():
    pass

def test_errors(broken):
    pass
'''


@pytest.fixture(scope="module")
def junit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("junit")
    (folder / "test_sample.py").write_text(TESTS)
    path = folder / "out.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py",
                    f"--junitxml={path}"], cwd=folder, capture_output=True, check=False)
    return str(path)


def test_junit_counts_outcomes_messages_and_recorded_properties(junit):
    counts = junit_counts(junit)
    assert {k: counts[k] for k in ("tests", "passed", "failed", "errors", "skipped")} == \
        {"tests": 4, "passed": 1, "failed": 1, "errors": 1, "skipped": 1}
    assert [f["test"].rsplit("::", 1)[-1] for f in counts["failures"]] == ["test_fails", "test_errors"]
    assert "one is not two" in counts["failures"][0]["message"]
    assert list(counts["skip_reasons"].values()) == [1] and "no GPU" in next(iter(counts["skip_reasons"]))
    (props,) = counts["properties"].values()
    assert float(props["final_logits"]) == 2.5e-06


def test_junit_verdict_fails_on_failures_skips_where_none_may_be_and_too_few_tests(junit, tmp_path):
    strict = junit_verdict(junit, allow_skips=False, min_tests=10)
    assert len(strict.problems) == 3 and "test_fails, test_errors" in strict.problems[1]
    assert "skipped where none may be" in strict.problems[2] and "no GPU" in strict.problems[2]
    assert strict.headline == "1 passed, 1 failed, 1 errors, 1 skipped"
    lenient = junit_verdict(junit, allow_skips=True)
    assert len(lenient.problems) == 1
    assert junit_verdict(str(tmp_path / "none.xml"), allow_skips=True).problems[0].startswith("pytest wrote no")
    described = make_junit_evaluator(junit, allow_skips=True, describe=lambda c: f"{c['tests']} collected")(None)
    assert described.headline.endswith("; 4 collected")
    (tmp_path / "bad.xml").write_text("not xml")
    with pytest.raises(ValueError, match="not JUnit XML"):
        junit_counts(str(tmp_path / "bad.xml"))


def _metrics(folder, losses, miou=42.0, last_line=""):
    lines = [json.dumps({"iteration": 19 + 20 * i, "total_loss": loss, "time": 0.1}) for i, loss in enumerate(losses)]
    if miou is not None:
        lines.append(json.dumps({"iteration": 20 * len(losses), "sem_seg/mIoU": miou}))
    (folder / "metrics.json").write_text("\n".join(lines) + "\n" + last_line)


def test_training_verdict_wants_finite_falling_losses_the_iterations_and_the_metric(tmp_path):
    _metrics(tmp_path, [60.0, 50.0, 45.0, 40.0, 35.0, 30.0], last_line='{"iteration": 1')  # a line cut short
    good = training_verdict(str(tmp_path), expect_falling=True, min_iterations=120)
    assert good.problems == [] and good.details["fell"] and good.details["sem_seg/mIoU"] == 42.0
    assert good.headline.startswith("120 it, total_loss 60 -> 30 (finite, falling), mIoU 42.0")
    short = training_verdict(str(tmp_path), expect_falling=True, min_iterations=200)
    assert short.problems == ["reached iteration 120 of 200"]

    _metrics(tmp_path, [30.0, 40.0, 50.0])
    assert "did not fall" in training_verdict(str(tmp_path), expect_falling=True).problems[0]
    assert training_verdict(str(tmp_path), expect_falling=False).problems == []

    _metrics(tmp_path, [30.0, float("nan")], miou=None)
    problems = training_verdict(str(tmp_path), expect_falling=False).problems
    assert "non-finite" in problems[0] and "no sem_seg/mIoU" in problems[1]

    _metrics(tmp_path, [30.0])
    assert "too few to see a trend" in training_verdict(str(tmp_path), expect_falling=False).headline
    assert "no metrics.json" in training_verdict(str(tmp_path / "none"), expect_falling=False).problems[0]


def test_benchmark_verdict_reads_speed_memory_and_the_comparison(tmp_path):
    inference = {"args": {"task": "inference"}, "machine": {"torch": "2.11"}, "results": {
        "this project": {"median_s": 0.05, "throughput_img_s": 20.0, "peak_memory_mb": 2048.0, "compile_s": 30.0,
                         "profile": [{"op": "x"}]},
        "Hugging Face transformers": {"median_s": 0.1, "throughput_img_s": 10.0, "peak_memory_mb": 3072.0},
        "ratio_ours_to_hf": 0.5, "input": "random 800x1333 images"}}
    (tmp_path / "infer.json").write_text(json.dumps(inference))
    verdict = benchmark_verdict(str(tmp_path / "infer.json"))
    assert verdict.problems == [] and verdict.details["ratio_ours_to_hf"] == 0.5
    assert "profile" not in verdict.details["this project"]
    assert verdict.headline == "ours 20.00 img/s, 2.00 GiB (compile 30 s); HF 10.00 img/s, 3.00 GiB; time ours/HF 0.50"
    train = {"args": {"task": "train"},
             "results": {"this project": {"median_s_per_iter": 0.25, "peak_memory_mb": 512.0}}}
    (tmp_path / "train.json").write_text(json.dumps(train))
    assert benchmark_verdict(str(tmp_path / "train.json")).headline == "ours 0.250 s/it, 0.50 GiB"
    assert benchmark_verdict(str(tmp_path / "none.json")).problems == ["the benchmark wrote no report"]


def test_json_result_file_problems_details_and_headline(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"losses": [3.0, 2.0], "problems": ["nccl failed"]}))
    verdict = json_file_verdict(str(tmp_path / "r.json"), lambda r: f"{len(r['losses'])} steps")
    assert (verdict.problems, verdict.details, verdict.headline) == (["nccl failed"], {"losses": [3.0, 2.0]}, "2 steps")
    assert "wrote no result" in json_file_verdict(str(tmp_path / "none.json"), str).problems[0]
