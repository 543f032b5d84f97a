"""The device check's runner: steps as subprocesses with logs, time limits, the budget, what a step
needs, steps side by side, and evaluators; no verdict depends on how fast this machine is."""
import os
import sys
import time

import pytest

from segcore.devcheck import Plan, Step, Verdict
from segcore.devcheck.runner import Runner

PY = sys.executable


def _runner(tmp_path, *, seconds=600.0, **kwargs):
    return Runner(repo_root=str(tmp_path), logs_dir=str(tmp_path / "logs"), base_env=dict(os.environ),
                  deadline=time.monotonic() + seconds, report_dir=str(tmp_path), poll_s=0.05, **kwargs)


def _py(code):
    return [PY, "-c", code]


def test_commands_run_in_order_into_the_log_and_stop_at_the_first_failure(tmp_path):
    marker = tmp_path / "not_reached"
    plan = Plan([
        Step("ok", "passes", "p", [_py("print('one')"), _py("print('two')")], timeout_s=60),
        Step("bad", "fails", "p", [_py("import sys; print('boom'); sys.exit(3)"), _py(f"open({str(marker)!r}, 'w')")],
             timeout_s=60),
    ])
    ok, bad = _runner(tmp_path).run(plan)
    assert (ok.status, ok.returncode, ok.reason, ok.log_tail) == ("passed", 0, "", [])
    log = (tmp_path / ok.log).read_text()
    assert log.index("one") < log.index("two") and "$ " in log and ok.log == os.path.join("logs", "ok.log")
    assert (bad.status, bad.returncode) == ("failed", 3) and "exit code 3" in bad.reason
    assert bad.log_tail[-1] == "boom" and not marker.exists()


def test_a_step_past_its_limit_is_stopped_with_what_it_started(tmp_path):
    child_pid_file = tmp_path / "child.pid"
    code = (f"import subprocess, sys, time\n"
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
            f"open({str(child_pid_file)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(300)")
    runner = _runner(tmp_path, kill_grace_s=1.0)
    (result,) = runner.run(Plan([Step("slow", "sleeps", "p", [_py(code)], timeout_s=3)]))
    assert result.status == "timed_out" and result.returncode is None and "time limit" in result.reason
    assert "stopping the step" in (tmp_path / result.log).read_text()
    child = int(child_pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and \
            open(f"/proc/{child}/stat").read().split()[2] != "Z":
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_out_of_budget_steps_are_skipped_and_later_ones_that_fit_still_run(tmp_path):
    plan = Plan([Step("big", "needs a lot", "p", [_py("pass")], timeout_s=900, min_s=800),
                 Step("small", "needs little", "p", [_py("pass")], timeout_s=60, min_s=5)])
    big, small = _runner(tmp_path, seconds=120).run(plan)
    assert big.status == "skipped" and "out of time" in big.reason and big.log is None
    assert small.status == "passed"


def test_a_step_whose_need_did_not_pass_is_skipped(tmp_path):
    plan = Plan([Step("data", "fails", "a", [_py("raise SystemExit(1)")], timeout_s=60),
                 Step("train", "needs data", "b", [_py("pass")], timeout_s=60, needs=("data",)),
                 Step("other", "independent", "b", [_py("pass")], timeout_s=60)])
    data, train, other = _runner(tmp_path).run(plan)
    assert data.status == "failed" and train.status == "skipped" and "needs data" in train.reason
    assert other.status == "passed"


def test_steps_of_a_parallel_phase_run_side_by_side(tmp_path):
    """Each step waits for the file the other writes: both pass only when they run at once."""
    a, b = tmp_path / "a", tmp_path / "b"

    def waits_for(mine, theirs):
        return _py(f"import os, time\nopen({str(mine)!r}, 'w').close()\nend = time.time() + 60\n"
                   f"while not os.path.exists({str(theirs)!r}) and time.time() < end: time.sleep(0.05)\n"
                   f"raise SystemExit(0 if os.path.exists({str(theirs)!r}) else 1)")

    plan = Plan([Step("one", "", "p", [waits_for(a, b)], timeout_s=90),
                 Step("two", "", "p", [waits_for(b, a)], timeout_s=90)], parallel={"p": 2})
    assert [r.status for r in _runner(tmp_path).run(plan)] == ["passed", "passed"]


def test_a_needed_step_in_the_same_phase_runs_first(tmp_path):
    marker = tmp_path / "made"
    plan = Plan([Step("user", "", "p", [_py(f"open({str(marker)!r}).close()")], timeout_s=60, needs=("maker",)),
                 Step("maker", "", "p", [_py(f"open({str(marker)!r}, 'w').close()")], timeout_s=60)],
                parallel={"p": 2})
    assert [r.status for r in _runner(tmp_path).run(plan)] == ["passed", "passed"]


def test_the_verdict_reads_the_outputs_and_a_broken_evaluator_fails_the_step(tmp_path):
    def found(run):
        return Verdict(problems=["loss rose"], details={"loss": [2, 3]}, headline="loss 2 -> 3")

    def broken(run):
        raise KeyError("results")

    plan = Plan([Step("judged", "", "p", [_py("pass")], timeout_s=60, evaluate=found),
                 Step("broken", "", "p", [_py("pass")], timeout_s=60, evaluate=broken)])
    judged, failed = _runner(tmp_path).run(plan)
    assert (judged.status, judged.reason, judged.details, judged.headline) == ("failed", "loss rose", {"loss": [2, 3]},
                                                                                 "loss 2 -> 3")
    assert failed.status == "failed" and "KeyError" in failed.reason


def test_environment_changes_missing_programs_and_results_as_they_come(tmp_path):
    seen = []
    code = "import os, sys; sys.exit(0 if os.environ.get('ADDED') == 'yes' and 'REMOVED' not in os.environ else 5)"
    plan = Plan([Step("env", "", "p", [_py(code)], timeout_s=60, env={"ADDED": "yes", "REMOVED": None}),
                 Step("missing", "", "p", [[str(tmp_path / "no-such-program")]], timeout_s=60)])
    os.environ["REMOVED"] = "1"
    try:
        env, missing = _runner(tmp_path, on_result=seen.append).run(plan)
    finally:
        del os.environ["REMOVED"]
    assert env.status == "passed"
    assert missing.returncode == 127 and "could not start" in (tmp_path / missing.log).read_text()
    assert [r.name for r in seen] == ["env", "missing"]


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "bad name"}, "letters"), ({"commands": []}, "no command"), ({"min_s": 100}, "min_s"),
])
def test_steps_and_plans_are_checked(kwargs, match):
    fields = {"name": "ok", "title": "", "phase": "p", "commands": [["true"]], "timeout_s": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        Step(**fields)
    with pytest.raises(ValueError, match="twice"):
        Plan([Step("a", "", "p", [["true"]], 10), Step("a", "", "p", [["true"]], 10)])
    with pytest.raises(ValueError, match="does not have"):
        Plan([Step("a", "", "p", [["true"]], 10, needs=("b",))])
