"""The device check's command line: install the carried wheels, build the family's plan, run it within
the budget, write the report and print its summary. ``tools/device_check.py`` calls :func:`main` with
the plan's module.

The order matters: the wheels are installed before anything imports the project's packages (the
plan's module imports the model family, and with it fvcore), and every failure after that, even in
building the plan, still ends with a report.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import fnmatch
import importlib
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import Callable, List, Optional, Sequence

from .context import CheckContext
from .environment import DeviceCheckError, command_env, describe_machine
from .report import (REPORT_NAME, SCHEMA_VERSION, SUMMARY_NAME, count_statuses, pack_logs, render_summary, step_line,
                     write_json)
from .runner import Runner
from .steps import FAILED, PASSED, TIMED_OUT, Plan, StepResult
from .wheels import WheelsError, download_wheels, install_missing, project_distribution

__all__ = ["DEFAULT_BUDGET_S", "DEFAULT_WHEELS_DIR", "UsageError", "build_parser", "main", "select_steps"]

#: the whole check's time, per mode: a GPU check must end well inside one 10-minute command of the
#: lent machine (its start is not counted there), with time left for the report
DEFAULT_BUDGET_S = {"gpu": 510.0, "cpu": 900.0}
#: the carried wheels' folder, relative to the repository (ignored by git; sent with ``carry``)
DEFAULT_WHEELS_DIR = "device_wheels"


class UsageError(DeviceCheckError):
    """The check cannot run as asked: no GPU without ``--cpu``, or ``--only`` / ``--skip`` patterns
    that match no step."""


class _Interrupted(SystemExit):
    """SIGTERM reached the check (e.g. the machine's time limit): stop the steps, keep the report."""


def _on_sigterm(signum, frame):
    raise _Interrupted(128 + signum)


def build_parser(prog: str = "device_check.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Prove the project on a GPU machine in one call: install the carried wheels, build the kernels, run "
        "the CUDA tests, the reference, training with AMP and the benchmarks; write report.json, the logs "
        "and a summary to --out. --cpu runs what needs no GPU, on the CPU, with tiny sizes."))
    parser.add_argument("--out", help="the report's folder (report.json, summary.txt, logs/)")
    parser.add_argument("--cpu", action="store_true", help="no GPU: the CPU counterparts, tiny sizes")
    parser.add_argument("--work", help="scratch folder (datasets, training runs); default: a new temporary one")
    parser.add_argument("--wheels", default=None,
                        help=f"the carried wheels (default: <repository>/{DEFAULT_WHEELS_DIR})")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="time for the whole check; steps that no longer fit are skipped (default: "
                             + ", ".join(f"{k} {v:.0f}" for k, v in DEFAULT_BUDGET_S.items()) + ")")
    parser.add_argument("--only", default="", help="comma-separated step or phase names (shell patterns) to run, "
                                                  "with the steps they need")
    parser.add_argument("--skip", default="", help="comma-separated step or phase names (shell patterns) to leave out")
    parser.add_argument("--list", action="store_true", help="print the plan (steps, limits, commands) and exit")
    parser.add_argument("--pack-logs", action="store_true", help="write the logs as one logs.tar.gz in --out "
                                                                 "instead of a logs/ folder")
    parser.add_argument("--download-wheels", nargs="?", const="", default=None, metavar="DIR",
                        help="here, with the package registry: download the wheels the GPU machine lacks into DIR "
                             f"(default <repository>/{DEFAULT_WHEELS_DIR}) and exit")
    parser.add_argument("--all-wheels", action="store_true",
                        help="with --download-wheels: also those the GPU machines' image provides")
    return parser


def _patterns(text: str) -> List[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def select_steps(plan: Plan, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Plan:
    """The plan's steps whose name or phase matches a pattern of ``only`` (all when empty), with the
    steps they need, less those matching ``skip``. A step left out is no longer needed by the others
    (``--skip build`` reruns the checks with the kernels a previous run built, ``--skip dataset`` with
    the data a previous run of the same ``--work`` made).

    Raises:
        ValueError: a pattern matches no step.
    """
    def matches(step, pattern):
        return fnmatch.fnmatchcase(step.name, pattern) or fnmatch.fnmatchcase(step.phase, pattern)

    for pattern in [*only, *skip]:
        if not any(matches(s, pattern) for s in plan.steps):
            names = ", ".join(s.name for s in plan.steps)
            raise ValueError(f"no step or phase matches {pattern!r}; the steps: {names}")
    by_name = {s.name: s for s in plan.steps}
    chosen = {s.name for s in plan.steps if not only or any(matches(s, p) for p in only)}
    todo = list(chosen)
    while todo:
        for need in by_name[todo.pop()].needs:
            if need not in chosen:
                chosen.add(need)
                todo.append(need)
    chosen -= {s.name for s in plan.steps if any(matches(s, p) for p in skip)}
    steps = [dataclasses.replace(s, needs=tuple(n for n in s.needs if n in chosen))
             for s in plan.steps if s.name in chosen]
    return Plan(steps, dict(plan.parallel))


def _format_plan(plan: Plan) -> str:
    lines = []
    for step in plan.steps:
        lines.append(f"[{step.phase}] {step.name}: {step.title} (limit {step.timeout_s:.0f} s, needs "
                     f"{step.min_s:.0f} s{', after ' + ', '.join(step.needs) if step.needs else ''})")
        env = " ".join(f"{k}={v}" for k, v in step.env.items() if v is not None)
        lines.extend(f"    {env + ' ' if env else ''}{shlex.join(c)}" for c in step.commands)
    return "\n".join(lines)


def _load_plan(plan: str, ctx: CheckContext, logs_dir: str, only: Sequence[str], skip: Sequence[str]) -> Plan:
    """Import the plan's module, build the plan for ``ctx`` and select its steps.

    Raises:
        DeviceCheckError: the module does not import or the plan cannot be built (the project does
            not import here: that is a finding; the traceback goes to ``logs/plan.log``).
        UsageError: ``only`` / ``skip`` name no step.
    """
    if ctx.repo_root not in sys.path:
        sys.path.insert(0, ctx.repo_root)
    try:
        built = importlib.import_module(plan).build_plan(ctx)
    except Exception as e:  # whatever the project raises on import: reported, with its traceback
        with open(os.path.join(logs_dir, "plan.log"), "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        raise DeviceCheckError(f"building the plan ({plan}) failed: {type(e).__name__}: {e} (logs/plan.log)") from e
    try:
        return select_steps(built, only, skip)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _setup_result(name: str, title: str, problems: Sequence[str], headline: str, details: dict, seconds: float,
                  log: Optional[str] = None) -> StepResult:
    return StepResult(name=name, title=title, phase="setup", status=FAILED if problems else PASSED,
                      seconds=round(seconds, 1), reason="; ".join(problems), headline=headline, details=details,
                      log=log)


def _wheels_headline(result: dict) -> str:
    if result["installed"]:
        return f"installed {', '.join(result['installed'])} into {result['target']}"
    if result["missing"]:
        return f"missing: {', '.join(result['missing'])}"
    return f"all {result['requirements']} requirements present, nothing installed"


def _say(text: str) -> None:
    print(text, flush=True)


def main(argv: Optional[Sequence[str]] = None, *, plan: str, repo_root: str, prog: str = "device_check.py",
         print_fn: Callable[[str], None] = _say) -> int:
    """Run the device check of the command line ``argv`` with the plan of module ``plan`` (a
    ``build_plan(CheckContext) -> Plan`` function) in ``repo_root``.

    Returns:
        the exit status: 0 when every step that ran passed, 1 when one failed or ran out of time,
        2 when the check could not run as asked (no GPU without ``--cpu``), 128 + N when signal N
        stopped it.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    repo_root = os.path.abspath(repo_root)
    wheels_dir = os.path.abspath(args.wheels) if args.wheels else os.path.join(repo_root, DEFAULT_WHEELS_DIR)
    if args.download_wheels is not None:
        dest = os.path.abspath(args.download_wheels) if args.download_wheels else wheels_dir
        try:
            download_wheels(dest, include_all=args.all_wheels, repo_root=repo_root, log=print_fn)
        except WheelsError as e:
            print_fn(f"error: {e}")
            return 1
        return 0
    if not args.out and not args.list:
        parser.error("--out DIR is required (the report's folder)")

    mode = "cpu" if args.cpu else "gpu"
    budget_s = args.budget_s if args.budget_s is not None else DEFAULT_BUDGET_S[mode]
    start, started_at = time.monotonic(), datetime.datetime.now().isoformat(timespec="seconds")
    work_dir = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="segcore-devcheck-")
    out_dir = os.path.abspath(args.out) if args.out else work_dir
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(work_dir, exist_ok=True)
    logs_parent = work_dir if args.pack_logs else out_dir
    logs_dir = os.path.join(logs_parent, "logs")
    os.makedirs(logs_dir, exist_ok=True)
    report_path = os.path.join(out_dir, REPORT_NAME)
    command = [prog, *(argv if argv is not None else sys.argv[1:])]
    report: dict = {"schema": SCHEMA_VERSION, "mode": mode, "command": command,
                    "started": started_at, "budget_s": budget_s, "work_dir": work_dir, "complete": False,
                    "machine": None, "steps": [], "error": None, "report_path": report_path,
                    "logs": os.path.join(out_dir, "logs.tar.gz") if args.pack_logs else logs_dir}
    results: List[StepResult] = report["steps"]

    def save() -> None:
        report["seconds"] = round(time.monotonic() - start, 1)
        report["counts"] = count_statuses(results)
        if not args.list:
            write_json(report_path, report)

    previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    status = 0
    try:
        report["machine"] = machine = describe_machine(work_dir)
        save()
        if args.list and not args.cpu and not machine.get("cuda_available"):  # list the GPU plan anyway
            machine = dict(machine, gpu={"name": "(no GPU here)", "arch": "<the GPU's>", "memory_gib": 0})
        elif not args.cpu and not machine.get("cuda_available"):
            raise UsageError(f"no CUDA GPU is visible to torch ({machine.get('torch')}, CUDA "
                             f"{machine.get('torch_cuda')}): run with --cpu")
        t0 = time.monotonic()
        wheels_log = os.path.join(logs_dir, "wheels.log")
        wheels = install_missing(wheels_dir, os.path.join(work_dir, "site"), log_path=wheels_log)
        report["wheels"] = wheels
        results.append(_setup_result("wheels", "the project's requirements, the missing ones installed from the "
                                     "carried wheels", wheels["problems"], _wheels_headline(wheels), wheels,
                                     time.monotonic() - t0, log=os.path.relpath(wheels_log, logs_parent)
                                     if os.path.exists(wheels_log) else None))
        save()
        print_fn(step_line(dataclasses.asdict(results[-1])))
        metadata_dir = os.path.join(work_dir, "meta")
        python_paths = [p for p in (wheels["target"], metadata_dir) if p]
        ctx = CheckContext(repo_root=repo_root, work_dir=work_dir, out_dir=out_dir, cpu=args.cpu, python=sys.executable,
                           machine=machine, metadata_dir=metadata_dir,
                           needs_metadata=project_distribution() is None)
        the_plan = _load_plan(plan, ctx, logs_dir, _patterns(args.only), _patterns(args.skip))
        if args.list:
            print_fn(_format_plan(the_plan))
            if not args.work:
                shutil.rmtree(work_dir, ignore_errors=True)
            return 0
        runner = Runner(repo_root=repo_root, logs_dir=logs_dir, base_env=command_env(repo_root, python_paths),
                        deadline=start + budget_s, report_dir=logs_parent,
                        on_result=lambda r: (results.append(r), save(), print_fn(step_line(dataclasses.asdict(r)))))
        print_fn(f"device check ({mode}): {len(the_plan.steps)} steps within {budget_s:.0f} s; logs in {logs_dir}")
        runner.run(the_plan)
        status = 1 if any(r.status in (FAILED, TIMED_OUT) for r in results) else 0
    except UsageError as e:
        report["error"] = str(e)
        status = 2
    except DeviceCheckError as e:
        report["error"] = str(e)
        status = 1
    except _Interrupted as e:
        report["error"] = f"stopped by signal {e.code - 128} after {time.monotonic() - start:.0f} s"
        status = e.code
    except KeyboardInterrupt:
        report["error"] = f"interrupted after {time.monotonic() - start:.0f} s"
        status = 130
    except Exception as e:  # a fault of the check itself: still end with the report, the traceback in its logs
        with open(os.path.join(logs_dir, "check.log"), "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
        report["error"] = f"the device check itself failed: {type(e).__name__}: {e} (logs/check.log)"
        status = 1
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if args.list and report["error"]:
        print_fn(f"error: {report['error']}")
        return status
    report["complete"] = report["error"] is None
    report["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    if args.pack_logs:
        pack_logs(logs_dir, report["logs"])
    save()
    summary = render_summary(report)
    with open(os.path.join(out_dir, SUMMARY_NAME), "w", encoding="utf-8") as f:
        f.write(summary + "\n")
    print_fn(summary)
    return status
