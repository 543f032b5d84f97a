"""The device check's command line with a stand-in plan (``fake_plan.py``): the report, the summary and
the logs of every kind of ending, step selection, the plan listing, the wheels download, and SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from segcore.devcheck import cli
from tests.paths import REPO_ROOT

PLAN = "tests.segcore.devcheck.fake_plan"


def _main(tmp_path, *args, plan=PLAN):
    printed = []
    status = cli.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                       "--wheels", str(tmp_path / "no_wheels"), *args], plan=plan, repo_root=REPO_ROOT,
                      print_fn=printed.append)
    report_file = tmp_path / "out" / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    return status, report, "\n".join(printed)


def _statuses(report):
    return {s["name"]: s["status"] for s in report["steps"]}


def test_a_cpu_run_reports_every_step_and_fails_when_one_failed(tmp_path):
    status, report, printed = _main(tmp_path, "--cpu")
    assert status == 1 and report["complete"] and report["error"] is None and report["mode"] == "cpu"
    assert _statuses(report) == {"wheels": "passed", "first": "passed", "second": "failed", "third": "passed"}
    assert report["counts"] == {"passed": 3, "failed": 1, "timed_out": 0, "skipped": 0}
    assert report["machine"]["torch"] and report["wheels"]["problems"] == []
    second = report["steps"][2]
    assert second["reason"] == "exit code 3" and second["log_tail"][-1] == "second fails"
    assert (tmp_path / "work" / "first.txt").exists()  # its cwd
    assert (tmp_path / "out" / "logs" / "second.log").read_text().endswith("second fails\n")
    assert printed.endswith((tmp_path / "out" / "summary.txt").read_text().strip())
    assert printed.splitlines()[0].startswith("ok   wheels")  # progress: a line as each step ends
    assert "FAIL second" in printed and "3 passed, 1 failed" in printed


def test_only_runs_the_chosen_steps_with_what_they_need_and_skip_leaves_out(tmp_path):
    status, report, _ = _main(tmp_path, "--cpu", "--only", "third")
    assert status == 0 and _statuses(report) == {"wheels": "passed", "first": "passed", "third": "passed"}
    status, report, _ = _main(tmp_path, "--cpu", "--skip", "second,fir*")
    assert status == 0 and _statuses(report) == {"wheels": "passed", "third": "passed"}
    status, report, printed = _main(tmp_path, "--cpu", "--only", "nothing_like_it")
    assert status == 2 and "no step or phase matches 'nothing_like_it'" in report["error"] and "ERROR" in printed


def test_without_a_gpu_the_check_says_to_use_cpu(tmp_path):
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    status, report, printed = _main(tmp_path)
    assert status == 2 and "run with --cpu" in report["error"] and not report["complete"]
    assert report["steps"] == [] and "ERROR: no CUDA GPU" in printed


def test_a_plan_that_cannot_be_built_still_ends_with_a_report(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_PLAN", "broken")
    status, report, _ = _main(tmp_path, "--cpu")
    assert status == 1 and "building the plan" in report["error"] and "RuntimeError" in report["error"]
    assert "the project does not import here" in (tmp_path / "out" / "logs" / "plan.log").read_text()
    assert _statuses(report) == {"wheels": "passed"}


def test_logs_can_travel_as_one_archive(tmp_path):
    status, report, _ = _main(tmp_path, "--cpu", "--pack-logs", "--only", "first")
    assert status == 0 and sorted(os.listdir(tmp_path / "out")) == ["logs.tar.gz", "report.json", "summary.txt"]
    with tarfile.open(tmp_path / "out" / "logs.tar.gz") as tar:
        assert "logs/first.log" in tar.getnames()
    assert report["steps"][1]["log"] == "logs/first.log"


def test_list_prints_the_plan_and_runs_nothing(tmp_path):
    printed = []
    status = cli.main(["--list", "--cpu", "--wheels", str(tmp_path / "none")], plan=PLAN, repo_root=REPO_ROOT,
                      print_fn=printed.append)
    text = "\n".join(printed)
    assert status == 0 and "[one] first: writes a file (limit 60 s" in text and "after first" in text
    assert not (tmp_path / "out").exists()


def test_download_wheels_is_its_own_mode(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "download_wheels", lambda dest, **kw: calls.append((dest, kw["include_all"])))
    assert cli.main(["--download-wheels", str(tmp_path / "w"), "--all-wheels"], plan=PLAN, repo_root=REPO_ROOT) == 0
    assert calls == [(str(tmp_path / "w"), True)]


def test_sigterm_stops_the_running_steps_and_leaves_a_report(tmp_path):
    code = (f"import sys; from segcore.devcheck.cli import main; "
            f"sys.exit(main(['--cpu', '--out', {str(tmp_path / 'out')!r}, '--work', {str(tmp_path / 'work')!r}, "
            f"'--wheels', {str(tmp_path / 'none')!r}], plan={PLAN!r}, repo_root={REPO_ROOT!r}))")
    env = dict(os.environ, FAKE_PLAN="hang", PYTHONPATH=REPO_ROOT)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = tmp_path / "work" / "started"
    deadline = time.monotonic() + 120
    while not (started.exists() and started.read_text()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    step_pid = int(started.read_text())
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 128 + signal.SIGTERM, output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["error"].startswith("stopped by signal 15") and not report["complete"]
    (hang,) = [s for s in report["steps"] if s["name"] == "hang"]
    assert hang["status"] == "failed" and hang["reason"] == "the device check was interrupted"
    assert not os.path.exists(f"/proc/{step_pid}") or open(f"/proc/{step_pid}/stat").read().split()[2] == "Z"


def test_a_fault_of_the_check_itself_still_ends_with_a_report(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cli, "install_missing", broken)
    status, report, printed = _main(tmp_path, "--cpu")
    assert status == 1 and report["error"].startswith("the device check itself failed: OSError: disk full")
    assert "Traceback" in (tmp_path / "out" / "logs" / "check.log").read_text() and "ERROR" in printed
