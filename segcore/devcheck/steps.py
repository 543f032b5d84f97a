"""What a device check is made of: steps (commands with a time limit), what a run of one left
behind, the verdict read from it, and the result the report keeps."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["PASSED", "FAILED", "TIMED_OUT", "SKIPPED", "STATUSES", "Plan", "Step", "StepResult", "StepRun",
           "Verdict", "exit_code_verdict"]

PASSED = "passed"
FAILED = "failed"
#: the step ran past its time limit (its own, or what was left of the check's budget)
TIMED_OUT = "timed_out"
#: the step did not run: out of time, a step it needs did not pass, or not selected
SKIPPED = "skipped"
STATUSES = (PASSED, FAILED, TIMED_OUT, SKIPPED)


@dataclass
class StepRun:
    """What running a step left behind, for its evaluator.

    Attributes:
        returncode: the exit status of the last command that ran (None when it was killed).
        timed_out: the step was stopped at its time limit.
        seconds: wall-clock time of its commands together.
        log_path: the file that holds the commands' standard output and error.
    """

    returncode: Optional[int]
    timed_out: bool
    seconds: float
    log_path: str

    def log_text(self) -> str:
        """The log's text (empty when there is none)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


@dataclass
class Verdict:
    """What a step proved, read from its outputs.

    Attributes:
        problems: why it did not pass (empty: nothing wrong was found).
        details: measurements and counts for the report (JSON-serializable).
        headline: one short line for the summary (e.g. "87 passed").
    """

    problems: List[str] = field(default_factory=list)
    details: Dict[str, object] = field(default_factory=dict)
    headline: str = ""


def exit_code_verdict(run: StepRun) -> Verdict:
    """The default evaluation: the step passed when its commands exited with 0."""
    if run.returncode == 0:
        return Verdict()
    return Verdict(problems=[f"exit code {run.returncode}"])


@dataclass
class Step:
    """One step of a check: commands run one after another in a subprocess each.

    Attributes:
        name: a short identifier (letters, digits, ``_``), also the log's file name.
        title: what it checks, in words.
        phase: the steps of a phase run after every step of the earlier phases has ended (see
            :class:`Plan`).
        commands: argument lists, run in order; the step stops at the first that fails.
        timeout_s: the longest the step may run (commands together).
        min_s: it is skipped when less than this is left of the check's budget.
        env: variables set (a value) or removed (None) for its commands, over the check's own.
        cwd: the commands' working folder (default: the repository root).
        needs: names of steps that must have passed first; otherwise this one is skipped.
        evaluate: reads the run's outputs into a :class:`Verdict` (default: the exit code).
    """

    name: str
    title: str
    phase: str
    commands: Sequence[Sequence[str]]
    timeout_s: float
    min_s: float = 0.0
    env: Mapping[str, Optional[str]] = field(default_factory=dict)
    cwd: Optional[str] = None
    needs: Tuple[str, ...] = ()
    evaluate: Callable[[StepRun], Verdict] = exit_code_verdict

    def __post_init__(self):
        if not self.name or not all(c.isalnum() or c == "_" for c in self.name):
            raise ValueError(f"step name {self.name!r}: use letters, digits and '_' only")
        if not self.commands:
            raise ValueError(f"step {self.name!r} has no command")
        if self.timeout_s <= 0 or self.min_s < 0 or self.min_s > self.timeout_s:
            raise ValueError(f"step {self.name!r}: need 0 <= min_s <= timeout_s and timeout_s > 0 "
                             f"(got min_s={self.min_s}, timeout_s={self.timeout_s})")


@dataclass
class Plan:
    """The steps of a check, in order, and how many steps of each phase may run at once.

    Phases run in the order of their first step; a phase missing from ``parallel`` runs one step at a
    time (what timings need: a benchmark must have the machine to itself).
    """

    steps: List[Step]
    parallel: Dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        names = [s.name for s in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"the plan names these steps twice: {duplicates}")
        for step in self.steps:
            unknown = [n for n in step.needs if n not in names]
            if unknown:
                raise ValueError(f"step {step.name!r} needs {unknown}, which the plan does not have")

    def phases(self) -> List[str]:
        """The phase names in running order."""
        return list(dict.fromkeys(s.phase for s in self.steps))


@dataclass
class StepResult:
    """A step's outcome, as the report keeps it.

    Attributes:
        name, title, phase: the step's.
        status: one of :data:`STATUSES`.
        seconds: how long it ran (0 when skipped).
        reason: why it did not pass (empty when it passed).
        headline: the verdict's summary line.
        details: the verdict's measurements.
        returncode: the last command's exit status (None: skipped or killed).
        log: the log's path relative to the report's folder (None: skipped).
        log_tail: the last lines of the log when the step did not pass.
        commands: the command lines, as run.
    """

    name: str
    title: str
    phase: str
    status: str
    seconds: float = 0.0
    reason: str = ""
    headline: str = ""
    details: Dict[str, object] = field(default_factory=dict)
    returncode: Optional[int] = None
    log: Optional[str] = None
    log_tail: List[str] = field(default_factory=list)
    commands: List[List[str]] = field(default_factory=list)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"step status {self.status!r} is not one of {STATUSES}")
