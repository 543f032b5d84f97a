"""launch(): the workers end with their launcher (kill -9 of the launcher included), and not before.

A launcher process runs ``launch`` with 2 gloo workers whose main function records its pid and
sleeps. The launcher ignores SIGINT, as one started in the background by a script does (``cmd &``):
its workers inherit that, so torch's own parent-death signal (SIGINT) does nothing, which is how
the orphans of the issue came about.
"""
import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch.distributed as dist

from segcore.engine import launch
from segcore.utils import comm
from tests.paths import REPO_ROOT
from tests.segcore.engine.launcher_process import alive, running_launcher, wait_until, write_record

launch_module = importlib.import_module("segcore.engine.launch")  # segcore.engine.launch is the function

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo required")

_PR_GET_PDEATHSIG = 2  # <linux/prctl.h>


def _death_signal() -> int | None:
    """This process's parent-death signal (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    value = ctypes.c_int(-1)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) != 0:
        return None
    return value.value


def _record_and_sleep(records, mode):
    """A worker: records its pid and death signal, then sleeps (as a long training would)."""
    if mode == "watchdog-only":  # leave only the watchdog thread to end this worker
        launch_module._set_parent_death_signal(0)
    write_record(records, comm.get_rank(), death_signal=_death_signal())
    for _ in range(600):
        time.sleep(1)
    write_record(records, comm.get_rank() + 100)  # "finished": never reached in the tests


def _sleep_past_the_watchdog_then_record(records):
    """A worker that outlives several watchdog checks while its launcher lives, then finishes."""
    time.sleep(3 * launch_module.PARENT_POLL_INTERVAL)
    comm.synchronize()
    write_record(records, comm.get_rank())


@pytest.mark.parametrize("mode", ["death-signal", "watchdog-only"])
def test_kill_9_of_the_launcher_ends_its_workers(tmp_path, mode):
    with running_launcher(_record_and_sleep, tmp_path, mode, ignore_sigint=True) as (launcher, workers):
        pids = [w["pid"] for w in workers]
        assert all(alive(pid) for pid in pids)
        if sys.platform.startswith("linux"):
            expected = signal.SIGKILL if mode == "death-signal" else 0
            assert [w["death_signal"] for w in workers] == [expected] * 2

        launcher.kill()  # SIGKILL: nothing of the launcher runs any more
        launcher.wait(timeout=60)
        wait_until(lambda: not any(alive(pid) for pid in pids), 60, f"the workers {pids} end")
    assert not any((tmp_path / f"worker{100 + rank}.json").exists() for rank in range(2))


def test_workers_outlive_watchdog_checks_and_exit_cleanly_with_their_launcher(tmp_path):
    """While the launcher lives, the watchdog leaves its workers alone; when they are done, launch
    returns normally (every worker exited with status 0) and no worker is left."""
    assert launch(_sleep_past_the_watchdog_then_record, 2, dist_url="auto", args=(str(tmp_path),)) is None
    pids = [json.loads((tmp_path / f"worker{rank}.json").read_text())["pid"] for rank in range(2)]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    wait_until(lambda: not any(alive(pid) for pid in pids), 30, f"the workers {pids} end")


def test_a_worker_whose_launcher_is_already_gone_exits_at_once():
    """The launcher may die before its worker sets up its death signal: the worker checks its parent."""
    code = ("import os\n"
            "from segcore.engine.launch import _end_with_launcher\n"
            "_end_with_launcher(os.getppid() + 1_000_000)\n"  # not its parent: as if re-parented
            "print('still running')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "still running" not in proc.stdout
    assert "is gone; ending worker" in proc.stderr
