"""Read what a step proved from the files it wrote: pytest's JUnit XML, a training run's
``metrics.json``, ``tools/benchmark.py``'s ``--json`` report, a JSON result file.

Each ``*_verdict`` function returns a :class:`~segcore.devcheck.steps.Verdict`; the ``make_*``
helpers bind their paths and expectations into a step's ``evaluate``.
"""
from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, Optional, Sequence

from .steps import StepRun, Verdict

__all__ = ["LossTrend", "benchmark_verdict", "junit_counts", "junit_verdict", "json_file_verdict",
           "loss_trend", "make_benchmark_evaluator", "make_json_evaluator", "make_junit_evaluator",
           "make_training_evaluator", "read_metrics", "training_verdict"]


# --------------------------------------------------------------------------- pytest (JUnit XML)
def junit_counts(path: str) -> Dict[str, object]:
    """Counts and failures of a pytest ``--junitxml`` file.

    Returns:
        ``{"tests", "passed", "failed", "errors", "skipped", "failures": [{"test", "message"}],
        "skip_reasons": {reason: count}, "properties": {test: {name: value}}}`` (``properties``:
        what the tests recorded with pytest's ``record_property``).

    Raises:
        FileNotFoundError: no such file (pytest did not get as far as writing it).
        ValueError: the file is not JUnit XML.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path} is not JUnit XML: {e}") from e
    cases = list(root.iter("testcase"))
    counts = {"tests": len(cases), "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: List[Dict[str, str]] = []
    skip_reasons: Dict[str, int] = {}
    properties: Dict[str, Dict[str, str]] = {}
    for case in cases:
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if props:
            properties[test] = props
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
            continue
        message = (outcome.get("message") or (outcome.text or "")).strip().splitlines()
        first = message[0][:240] if message else ""
        if outcome.tag == "skipped":
            counts["skipped"] += 1
            skip_reasons[first] = skip_reasons.get(first, 0) + 1
        else:
            counts["failed" if outcome.tag == "failure" else "errors"] += 1
            failures.append({"test": test, "message": first})
    return {**counts, "failures": failures, "skip_reasons": skip_reasons, "properties": properties}


def junit_verdict(path: str, *, allow_skips: bool, min_tests: int = 1) -> Verdict:
    """The verdict of a pytest run from its JUnit XML.

    Args:
        path: the ``--junitxml`` file.
        allow_skips: whether a skipped test is acceptable (on a GPU machine a skipped CUDA test is
            a failure: it means the GPU or the kernel was not found).
        min_tests: fewer collected tests is a failure (a selection that matched nothing).
    """
    if not os.path.exists(path):
        return Verdict(problems=["pytest wrote no JUnit report (it did not get to run the tests)"])
    counts = junit_counts(path)
    problems = []
    if counts["tests"] < min_tests:
        problems.append(f"{counts['tests']} tests collected, expected at least {min_tests}")
    if counts["failed"] or counts["errors"]:
        names = ", ".join(f["test"].rsplit("::", 1)[-1] for f in counts["failures"][:5])
        more = "" if len(counts["failures"]) <= 5 else f" and {len(counts['failures']) - 5} more"
        problems.append(f"{counts['failed']} failed, {counts['errors']} errors: {names}{more}")
    if counts["skipped"] and not allow_skips:
        reasons = "; ".join(f"{n} x {r}" for r, n in counts["skip_reasons"].items())
        problems.append(f"{counts['skipped']} skipped where none may be ({reasons})")
    parts = [f"{counts[k]} {k}" for k in ("passed", "failed", "errors", "skipped") if counts[k]]
    return Verdict(problems=problems, details=counts, headline=", ".join(parts) or "no tests")


def make_junit_evaluator(path: str, *, allow_skips: bool, min_tests: int = 1,
                         describe: Optional[Callable[[Dict[str, object]], str]] = None) -> Callable[[StepRun], Verdict]:
    """A step's ``evaluate`` for a pytest run writing ``path``; ``describe(counts)``, when given,
    adds to the headline (e.g. the measured differences the tests recorded)."""

    def evaluate(run: StepRun) -> Verdict:
        verdict = junit_verdict(path, allow_skips=allow_skips, min_tests=min_tests)
        if describe is not None and verdict.details:
            extra = describe(verdict.details)
            if extra:
                verdict.headline = f"{verdict.headline}; {extra}"
        return verdict

    return evaluate


# --------------------------------------------------------------------------- training (metrics.json)
def read_metrics(output_dir: str) -> List[dict]:
    """The records of ``<output_dir>/metrics.json`` (one JSON object a line); a line cut short by
    a killed run is left out.

    Raises:
        FileNotFoundError: the run wrote no metrics.
    """
    records = []
    with open(os.path.join(output_dir, "metrics.json"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class LossTrend:
    """The total loss over a run: its records, whether all are finite, and whether it fell.

    "Fell" compares the mean of the first third of the records with the mean of the last third (at
    least one record each), so one noisy record decides nothing.
    """

    def __init__(self, iterations: Sequence[int], losses: Sequence[float]):
        self.iterations = list(iterations)
        self.losses = list(losses)
        self.finite = all(math.isfinite(v) for v in self.losses)
        third = max(1, len(self.losses) // 3)
        self.first_mean = sum(self.losses[:third]) / third if self.losses else math.nan
        self.last_mean = sum(self.losses[-third:]) / third if self.losses else math.nan
        self.fell = len(self.losses) >= 2 and self.finite and self.last_mean < self.first_mean


def loss_trend(records: Sequence[dict], key: str = "total_loss") -> LossTrend:
    """The :class:`LossTrend` of ``key`` in the training records (those that have it)."""
    rows = [(r["iteration"], float(r[key])) for r in records if key in r and "iteration" in r]
    return LossTrend([i for i, _ in rows], [v for _, v in rows])


def training_verdict(output_dir: str, *, expect_falling: bool, metric: str = "sem_seg/mIoU",
                     min_iterations: int = 1) -> Verdict:
    """The verdict of a training run from its ``metrics.json``: the total loss finite at every
    record and (``expect_falling``) lower at the end than at the start, the run reaching
    ``min_iterations``, and the evaluation's ``metric`` reported."""
    try:
        records = read_metrics(output_dir)
    except FileNotFoundError:
        return Verdict(problems=[f"no metrics.json in {output_dir}: the run wrote no training record"])
    trend = loss_trend(records)
    evaluation = [r[metric] for r in records if metric in r]
    times = sorted(float(r["time"]) for r in records if "time" in r)
    details: Dict[str, object] = {
        "records": len(trend.losses), "iterations": trend.iterations[-1] + 1 if trend.iterations else 0,
        "total_loss": trend.losses, "loss_first_third_mean": trend.first_mean,
        "loss_last_third_mean": trend.last_mean, "finite": trend.finite, "fell": trend.fell,
        metric: evaluation[-1] if evaluation else None,
        "median_s_per_iter": times[len(times) // 2] if times else None}
    problems = []
    if not trend.losses:
        problems.append("no total_loss was recorded")
    elif not trend.finite:
        problems.append(f"non-finite total_loss: {trend.losses}")
    elif expect_falling and not trend.fell:
        problems.append(f"the total loss did not fall: mean {trend.first_mean:.4g} over the first third of "
                        f"the records, {trend.last_mean:.4g} over the last")
    if details["iterations"] < min_iterations:
        problems.append(f"reached iteration {details['iterations']} of {min_iterations}")
    if not evaluation:
        problems.append(f"the evaluation reported no {metric}")
    headline = (f"{details['iterations']} it, total_loss {trend.losses[0]:.3g} -> {trend.losses[-1]:.3g}"
                if trend.losses else "no loss recorded")
    if not trend.finite:
        headline += " (NOT finite)"
    elif len(trend.losses) >= 2:
        headline += " (finite, falling)" if trend.fell else " (finite, NOT falling)"
    elif trend.losses:
        headline += f" (finite; {len(trend.losses)} record: too few to see a trend)"
    if evaluation:
        headline += f", {metric.split('/')[-1]} {evaluation[-1]:.1f}"
    if details["median_s_per_iter"] is not None:
        headline += f", {details['median_s_per_iter']:.3f} s/it"
    return Verdict(problems=problems, details=details, headline=headline)


def make_training_evaluator(output_dir: str, **kwargs) -> Callable[[StepRun], Verdict]:
    """A step's ``evaluate`` for a training run into ``output_dir`` (see :func:`training_verdict`)."""
    return lambda run: training_verdict(output_dir, **kwargs)


# --------------------------------------------------------------------------- tools/benchmark.py --json
def _gib(mb: Optional[float]) -> str:
    return "?" if mb is None else f"{mb / 1024:.2f} GiB"


def benchmark_verdict(path: str) -> Verdict:
    """The verdict of a ``tools/benchmark.py --json`` report: each implementation's speed and peak
    memory (inference: images/s; training: s/iteration), and ours against Hugging Face's."""
    if not os.path.exists(path):
        return Verdict(problems=["the benchmark wrote no report"])
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    results = report.get("results", {})
    task = report.get("args", {}).get("task", "inference")
    entries = {name: entry for name, entry in results.items() if isinstance(entry, dict)}
    if not entries:
        return Verdict(problems=["the benchmark report has no result"])
    details: Dict[str, object] = {"task": task, "input": results.get("input"), "machine": report.get("machine")}
    parts = []
    for name, entry in entries.items():
        keep = {k: v for k, v in entry.items() if k != "profile"}
        details[name] = keep
        short = "ours" if name == "this project" else ("HF" if "Hugging Face" in name else name)
        if task == "train":
            parts.append(f"{short} {entry['median_s_per_iter']:.3f} s/it, {_gib(entry.get('peak_memory_mb'))}")
        elif task == "inference":
            parts.append(f"{short} {entry['throughput_img_s']:.2f} img/s, {_gib(entry.get('peak_memory_mb'))}")
        if "compile_s" in entry:
            parts[-1] += f" (compile {entry['compile_s']:.0f} s)"
    if "ratio_ours_to_hf" in results:
        details["ratio_ours_to_hf"] = results["ratio_ours_to_hf"]
        parts.append(f"time ours/HF {results['ratio_ours_to_hf']:.2f}")
    return Verdict(details=details, headline="; ".join(parts))


def make_benchmark_evaluator(path: str) -> Callable[[StepRun], Verdict]:
    """A step's ``evaluate`` for a ``tools/benchmark.py --json path`` run."""
    return lambda run: benchmark_verdict(path)


# --------------------------------------------------------------------------- a step's own JSON result
def json_file_verdict(path: str, describe: Callable[[dict], str]) -> Verdict:
    """A result file a step's program wrote as JSON: its ``"problems"`` list (if any) and the rest
    as details; ``describe(result)`` makes the headline."""
    if not os.path.exists(path):
        return Verdict(problems=[f"the step wrote no result ({os.path.basename(path)})"])
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    problems = [str(p) for p in result.pop("problems", [])]
    return Verdict(problems=problems, details=result, headline=describe(result))


def make_json_evaluator(path: str, describe: Callable[[dict], str]) -> Callable[[StepRun], Verdict]:
    """A step's ``evaluate`` for a program that writes its result to ``path`` (see :func:`json_file_verdict`)."""
    return lambda run: json_file_verdict(path, describe)
