"""The check's JSON report, its one-screen summary, and its logs packed into one file."""
from __future__ import annotations

import dataclasses
import json
import os
import tarfile
from typing import Iterable, List

from .steps import FAILED, PASSED, SKIPPED, STATUSES, TIMED_OUT, StepResult

__all__ = ["REPORT_NAME", "SUMMARY_NAME", "SCHEMA_VERSION", "count_statuses", "pack_logs", "render_summary",
           "step_line", "write_json"]

REPORT_NAME = "report.json"
SUMMARY_NAME = "summary.txt"
#: the report's layout version (raise it when a key changes meaning)
SCHEMA_VERSION = 1
_MARKS = {PASSED: "ok  ", FAILED: "FAIL", TIMED_OUT: "TIME", SKIPPED: "skip"}


def count_statuses(results: Iterable[StepResult]) -> dict:
    """How many steps ended in each status."""
    counts = {status: 0 for status in STATUSES}
    for result in results:
        counts[result.status] += 1
    return counts


def write_json(path: str, report: dict) -> None:
    """Write ``report`` (StepResults are turned into dicts) to ``path`` atomically: a reader never
    sees half a file, even when the check is killed while writing."""
    def default(obj):
        if dataclasses.is_dataclass(obj):
            return dataclasses.asdict(obj)
        return str(obj)

    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=default)
    os.replace(tmp, path)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def step_line(step: dict, name_width: int = 28, width: int = 118) -> str:
    """One step on one line: its mark, name, seconds, and what it showed (or why it did not pass)."""
    what = step["headline"] or step["reason"] if step["status"] == PASSED else (step["reason"] or step["headline"])
    head = f"{_MARKS[step['status']]} {step['name']:<{name_width}} {step['seconds']:5.0f} s  "
    return head + _clip(what, max(20, width - len(head)))


def render_summary(report: dict, width: int = 118) -> str:
    """The report on one screen: the machine, one line per step (status, seconds, what it showed or
    why not), the reasons and last log lines of the steps that failed, and the counts."""
    machine = report.get("machine") or {}
    gpu = machine.get("gpu")
    where = (f"{gpu['name']} (sm {gpu['arch']}, {gpu['memory_gib']} GiB)" if gpu else "CPU only") + \
        f", {machine.get('cpu_count')} cores, torch {machine.get('torch')}, Python {machine.get('python')}"
    lines = [_clip(f"device check ({report.get('mode')}) on {where}", width),
             f"{report.get('seconds', 0):.0f} s of a {report.get('budget_s', 0):.0f} s budget"]
    if report.get("error"):
        lines.append(_clip(f"ERROR: {report['error']}", width))
    steps: List[dict] = [dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s for s in report.get("steps", [])]
    name_width = max([len(s["name"]) for s in steps] + [8])
    lines.extend(step_line(s, name_width, width) for s in steps)
    trouble = [s for s in steps if s["status"] in (FAILED, TIMED_OUT)]
    if trouble:
        lines.append("")
        for s in trouble:
            lines.append(_clip(f"{s['name']}: {s['reason']} (log: {s['log']})", width))
            lines.extend("    " + _clip(line, width - 4) for line in s["log_tail"][-3:])
    counts = report.get("counts") or count_statuses(StepResult(**s) for s in steps)
    lines.append("")
    lines.append(_clip(", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in STATUSES)
                       + f"; report: {report.get('report_path', REPORT_NAME)}", width))
    return "\n".join(lines)


def pack_logs(logs_dir: str, archive: str) -> str:
    """Pack ``logs_dir`` into the gzip-compressed tar ``archive`` (folder name ``logs/`` inside);
    returns ``archive``."""
    tmp = f"{archive}.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(logs_dir, arcname="logs")
    os.replace(tmp, archive)
    return archive
