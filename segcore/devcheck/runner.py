"""Run a :class:`~segcore.devcheck.steps.Plan`: phases in order, steps as subprocesses with their own
logs and time limits, within one budget for the whole check.

Each command starts in a new process session, so a step that runs out of time is ended with
everything it started (SIGTERM to its process group, SIGKILL after a grace period) and the check
goes on. A step is skipped, not started, when less than its ``min_s`` is left of the budget; its time
limit is cut to what is left. Every result is handed to ``on_result`` as soon as it is known (the
report is rewritten then, so even a check that is killed leaves one).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from typing import Callable, Dict, List, Mapping, Optional

from .steps import FAILED, PASSED, SKIPPED, TIMED_OUT, Plan, Step, StepResult, StepRun, Verdict

__all__ = ["LOG_TAIL_LINES", "Runner"]

#: lines of a log kept in the report for a step that did not pass
LOG_TAIL_LINES = 15


def _log_tail(text: str, lines: int = LOG_TAIL_LINES) -> List[str]:
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [line[:300] for line in kept[-lines:]]


class _ActiveStep:
    """A step whose commands are running: one subprocess at a time, all writing to its log."""

    def __init__(self, step: Step, env: Dict[str, str], cwd: str, log_path: str, timeout_s: float,
                 kill_grace_s: float):
        self.step = step
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.kill_grace_s = kill_grace_s
        self.start = time.monotonic()
        self.deadline = self.start + timeout_s
        self.timeout_s = timeout_s
        self.index = -1
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self.timed_out = False
        self.log = open(log_path, "w", encoding="utf-8")
        self.finished = self._start_next()

    def _start_next(self) -> bool:
        """Start the next command; True when none could be started (the step is over)."""
        self.index += 1
        command = list(self.step.commands[self.index])
        self.log.write(f"$ {shlex.join(command)}\n")
        self.log.flush()
        try:
            self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.cwd, env=self.env, start_new_session=True)
        except OSError as e:  # the program is missing or cannot run
            self.log.write(f"could not start the command: {type(e).__name__}: {e}\n")
            self.returncode = 127
            return True
        return False

    def poll(self) -> bool:
        """Advance the step; True once it is over (finished, failed or out of time)."""
        if self.finished:
            return True
        returncode = self.proc.poll()
        if returncode is None:
            if time.monotonic() >= self.deadline:
                self.kill(f"time limit of {self.timeout_s:.0f} s reached")
                self.timed_out = True
                self.finished = True
            return self.finished
        self.returncode = returncode
        if returncode != 0 or self.index == len(self.step.commands) - 1:
            self.finished = True
        else:
            self.finished = self._start_next()
        return self.finished

    def kill(self, why: str) -> None:
        """End the running command and everything in its process group."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.log.write(f"\n[device check] stopping the step: {why}\n")
        self.log.flush()
        for sig, wait_s in ((signal.SIGTERM, self.kill_grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> StepRun:
        self.log.close()
        return StepRun(returncode=self.returncode, timed_out=self.timed_out,
                       seconds=time.monotonic() - self.start, log_path=self.log_path)


class Runner:
    """Runs plans within a deadline.

    Args:
        repo_root: the commands' default working folder.
        logs_dir: where each step's log (``<name>.log``) is written.
        base_env: the environment of every command (a step's ``env`` applies on top).
        deadline: ``time.monotonic()`` value by which every step must have ended.
        report_dir: log paths in the results are relative to this folder.
        on_result: called with each result as soon as it is known.
        poll_s: how often running steps are looked at.
        kill_grace_s: how long a step has to end after SIGTERM before SIGKILL.
    """

    def __init__(self, *, repo_root: str, logs_dir: str, base_env: Mapping[str, str], deadline: float,
                 report_dir: Optional[str] = None, on_result: Optional[Callable[[StepResult], None]] = None,
                 poll_s: float = 0.2, kill_grace_s: float = 5.0):
        self.repo_root = repo_root
        self.logs_dir = logs_dir
        self.base_env = dict(base_env)
        self.deadline = deadline
        self.report_dir = report_dir or logs_dir
        self.on_result = on_result
        self.poll_s = poll_s
        self.kill_grace_s = kill_grace_s
        os.makedirs(logs_dir, exist_ok=True)

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, plan: Plan) -> List[StepResult]:
        """Run every step of ``plan``; returns their results in the plan's order.

        If this process is interrupted (KeyboardInterrupt, or SystemExit from a signal handler), the
        running steps are stopped and recorded as failed, and the exception goes on.
        """
        results: Dict[str, StepResult] = {}
        for phase in plan.phases():
            self._run_phase([s for s in plan.steps if s.phase == phase], max(1, plan.parallel.get(phase, 1)),
                            results)
        return [results[s.name] for s in plan.steps]

    def _record(self, results: Dict[str, StepResult], result: StepResult) -> None:
        results[result.name] = result
        if self.on_result is not None:
            self.on_result(result)

    def _run_phase(self, pending: List[Step], parallel: int, results: Dict[str, StepResult]) -> None:
        running: List[_ActiveStep] = []
        try:
            while pending or running:
                while len(running) < parallel:
                    step = next((s for s in pending if all(n in results for n in s.needs)), None)
                    if step is None:
                        break
                    pending.remove(step)
                    started = self._start(step, results)
                    if started is not None:
                        running.append(started)
                if not running:
                    for step in pending:  # what they need runs in a later phase, or not at all
                        self._record(results, self._skipped(step, f"needs {', '.join(step.needs)}, "
                                                                  "which had not run before it"))
                    return
                time.sleep(self.poll_s)
                for active in list(running):
                    if active.poll():
                        running.remove(active)
                        self._record(results, self._finish(active))
        except BaseException:
            for active in running:
                active.kill("the device check was interrupted")
                result = self._finish(active)
                result.status, result.reason = FAILED, "the device check was interrupted"
                self._record(results, result)
            raise

    def _start(self, step: Step, results: Dict[str, StepResult]) -> Optional[_ActiveStep]:
        blocked = [n for n in step.needs if results[n].status != PASSED]
        if blocked:
            self._record(results, self._skipped(step, f"needs {', '.join(blocked)}, which did not pass"))
            return None
        left = self.seconds_left()
        if left < max(step.min_s, 1.0):
            self._record(results, self._skipped(
                step, f"out of time: {max(left, 0):.0f} s of the budget left, the step needs {step.min_s:.0f} s"))
            return None
        env = dict(self.base_env)
        for key, value in step.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        log_path = os.path.join(self.logs_dir, f"{step.name}.log")
        return _ActiveStep(step, env, step.cwd or self.repo_root, log_path, min(step.timeout_s, left),
                           self.kill_grace_s)

    def _skipped(self, step: Step, reason: str) -> StepResult:
        return StepResult(name=step.name, title=step.title, phase=step.phase, status=SKIPPED, reason=reason,
                          commands=[list(c) for c in step.commands])

    def _finish(self, active: _ActiveStep) -> StepResult:
        run = active.close()
        step = active.step
        try:
            verdict = step.evaluate(run)
        except Exception as e:  # a broken evaluator must not end the check: it is reported as the step's failure
            verdict = Verdict(problems=[f"reading the step's results failed: {type(e).__name__}: {e}"])
        if run.timed_out:
            status = TIMED_OUT
            reason = f"stopped after {run.seconds:.0f} s (time limit)"
        elif run.returncode == 0 and not verdict.problems:
            status, reason = PASSED, ""
        else:
            status = FAILED
            problems = list(verdict.problems)
            if run.returncode not in (0, None) and not any("exit code" in p for p in problems):
                problems.append(f"exit code {run.returncode}")
            reason = "; ".join(problems)
        return StepResult(
            name=step.name, title=step.title, phase=step.phase, status=status, seconds=round(run.seconds, 1),
            reason=reason, headline=verdict.headline, details=verdict.details, returncode=run.returncode,
            log=os.path.relpath(run.log_path, self.report_dir),
            log_tail=[] if status == PASSED else _log_tail(run.log_text()),
            commands=[list(c) for c in step.commands])
