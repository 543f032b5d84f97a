"""tools/device_check.py end to end on the CPU (``--cpu``, tiny sizes), two of its real steps: the
thin tool, the requirements check, the plan, the runner, the quickstart generator and a pytest step
read from its JUnit report, the report and the summary. The whole ``--cpu`` check is run by hand
(docs/device_check.md); the GPU plan's command lines are checked in test_plan.py."""
import json
import subprocess
import sys

from tests.paths import REPO_ROOT


def test_the_cpu_check_runs_real_steps_into_a_report(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    done = subprocess.run([sys.executable, "tools/device_check.py", "--cpu", "--only", "dataset,kernel_tests",
                           "--out", str(out), "--work", str(work), "--wheels", str(tmp_path / "no_wheels")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] and report["mode"] == "cpu" and report["counts"]["passed"] == 3
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["wheels", "dataset", "kernel_tests"]
    assert steps["kernel_tests"]["details"]["passed"] >= 1 and steps["kernel_tests"]["details"]["skipped"] == 0
    assert (work / "datasets" / "quickstart_ade").is_dir() and (out / "logs" / "dataset.log").exists()
    assert done.stdout.strip().endswith((out / "summary.txt").read_text().strip())
    assert "ok   kernel_tests" in done.stdout
