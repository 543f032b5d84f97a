"""The machinery of a device check: a prepared run of a project's checks on a lent machine (a GPU),
as one command that always ends with a report.

A check is a list of :class:`Step` s, each one or more commands run as subprocesses with their own
time limit and log, grouped in phases (the steps of a phase may run concurrently); a global time
budget skips what no longer fits, and a step that fails or runs out of time is recorded and the
check goes on. What a step proved is read from what it wrote (JUnit XML, ``metrics.json``,
benchmark reports: :mod:`segcore.devcheck.evaluators`), and everything lands in one JSON report and
a one-screen summary (:mod:`segcore.devcheck.report`).

The packages the project needs that the machine lacks travel as wheels
(:mod:`segcore.devcheck.wheels`) and are installed before anything imports them, so this package
imports nothing beyond the standard library at import time. It knows no model: a family supplies the
plan (``mask2former.devcheck.plan``), and ``tools/device_check.py`` joins the two
(:func:`segcore.devcheck.cli.main`).
"""
from .steps import Plan, Step, StepResult, StepRun, Verdict

__all__ = ["Plan", "Step", "StepResult", "StepRun", "Verdict"]
