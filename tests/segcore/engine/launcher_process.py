"""A launcher process for the tests that kill it: ``launch`` with 2 workers in a subprocess.

The workers' main function (a module-level function of a test module) writes
``<records>/worker<rank>.json`` (with at least its ``"pid"``) through :func:`write_record` when it
is ready; :func:`running_launcher` waits for both records, yields, and ends whatever of the
launcher and its workers is left, so a failed test leaves no process behind.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.paths import REPO_ROOT

#: the launcher: ``launch(<module>.<function>, 2, args=(records, *argv))``, optionally ignoring SIGINT
#: (as a launcher started in the background by a script, ``cmd &``, does)
LAUNCHER = """
import importlib, signal, sys
module, function, ignore_sigint, records, *argv = sys.argv[1:]
if ignore_sigint == "1":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
from segcore.engine import launch
launch(getattr(importlib.import_module(module), function), 2, dist_url="auto", args=(records, *argv))
"""


def write_record(records: str, rank: int, **record) -> None:
    """Write ``<records>/worker<rank>.json`` (complete when it appears) with this process's pid."""
    path = os.path.join(records, f"worker{rank}.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), **record}, f)
    os.replace(path + ".tmp", path)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the OS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_until(condition, timeout: float, what: str):
    """Poll ``condition()`` every 0.2 s until it returns a true value (returned); fail the test
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.2)


@contextlib.contextmanager
def running_launcher(main_func, records, *argv: str, ignore_sigint: bool = False):
    """Start the launcher of ``main_func`` (module-level, in a test module), wait until both workers
    wrote their records; yields ``(launcher Popen, [record of rank 0, record of rank 1])``."""
    command = [sys.executable, "-c", LAUNCHER, main_func.__module__, main_func.__name__, "1" if ignore_sigint else "0",
               str(records), *argv]
    launcher = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": REPO_ROOT, "OMP_NUM_THREADS": "1"})
    paths = [os.path.join(records, f"worker{rank}.json") for rank in range(2)]
    workers = []
    try:
        def started():
            if launcher.poll() is not None:
                pytest.fail(f"the launcher ended ({launcher.returncode}): {launcher.stderr.read()[-3000:]}")
            return all(os.path.exists(p) for p in paths)

        wait_until(started, 180, "the two workers start")
        for p in paths:
            with open(p) as f:
                workers.append(json.load(f))
        yield launcher, workers
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        launcher.stderr.close()
        for worker in workers:
            if alive(worker["pid"]):
                os.kill(worker["pid"], signal.SIGKILL)
