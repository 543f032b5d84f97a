"""One run per OUTPUT_DIR: lock_output_dir, default_setup, launch with 2 workers, train_net.py.

A second run on a folder that a live process holds is refused, naming the folder and the holder;
the lock dies with its holder (kill -9 included, even while the holder's forked children live);
one process may set up several runs in a row; unusable folders give a typed error naming them.
"""
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch.distributed as dist

from segcore.config import get_cfg
from segcore.engine import default_argument_parser, default_setup, launch
from segcore.engine.output_lock import (
    LOCK_FILE_NAME,
    OutputDirError,
    OutputDirInUseError,
    lock_output_dir,
    release_output_dir_lock,
)
from tests.e2e_utils import MASKFORMER_QUICKSTART, load_script
from tests.paths import REPO_ROOT
from tests.segcore.engine.launcher_process import running_launcher, wait_until, write_record

#: a holder process: locks argv[1], forks a child that sleeps (as a data-loader worker would),
#: prints both pids, then sleeps until killed
HOLDER = """
import os, sys, time
from segcore.engine.output_lock import lock_output_dir
lock_output_dir(sys.argv[1])
child = os.fork()
if child == 0:
    time.sleep(600)
    os._exit(0)
print(os.getpid(), child, flush=True)
time.sleep(600)
"""


@pytest.fixture(autouse=True)
def _release():
    yield
    release_output_dir_lock()


@pytest.fixture
def holder(tmp_path):
    """Start a process holding the lock of ``tmp_path / "run"``; yields (process, child pid)."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    line = proc.stdout.readline()  # blocks until the lock is held (or the process failed)
    if not line:
        proc.wait()
        pytest.fail(f"the holder failed: {proc.stderr.read()[-3000:]}")
    pid, child = map(int, line.split())
    assert pid == proc.pid
    yield proc, child
    for p in (proc.pid, child):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def _is_locked(folder) -> bool:
    """Whether some open file of the lock file holds its flock (also one of this process)."""
    fd = os.open(os.path.join(folder, LOCK_FILE_NAME), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases a lock just taken
    return False


def _cfg(out):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(out)
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def test_lock_creates_the_folder_and_records_its_holder(tmp_path):
    out = tmp_path / "a" / "b"
    lock = lock_output_dir(str(out))
    assert out.is_dir() and lock.locked and _is_locked(out)
    holder = json.loads((out / LOCK_FILE_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["command"] and holder["started"] and holder == lock.holder
    lock.release()
    assert not lock.locked and not _is_locked(out)
    lock.release()  # twice: nothing happens


def test_second_run_refused_while_the_holder_lives_then_free_after_kill_9(tmp_path, holder):
    proc, child = holder
    out = tmp_path / "run"
    with pytest.raises(OutputDirInUseError) as e:
        lock_output_dir(str(out))
    message = str(e.value)
    assert str(out) in message and f"pid {proc.pid}" in message and socket.gethostname() in message
    assert e.value.holder["pid"] == proc.pid and isinstance(e.value, OSError)
    # default_setup refuses before writing anything into the folder
    with pytest.raises(OutputDirInUseError, match=f"pid {proc.pid}"):
        default_setup(_cfg(out), None)
    assert sorted(os.listdir(out)) == [LOCK_FILE_NAME]

    proc.kill()
    proc.wait()
    os.kill(child, 0)  # the holder's forked child still lives: it does not keep the lock
    lock = lock_output_dir(str(out))
    assert lock.locked and json.loads((out / LOCK_FILE_NAME).read_text())["pid"] == os.getpid()


def test_one_process_sets_up_runs_in_a_row(tmp_path):
    """Training, --resume and --eval-only on one folder, then another folder, in one process (as the
    tests do): never refused; the folder of the current run is the one locked."""
    first, second = tmp_path / "first", tmp_path / "second"
    eval_only = default_argument_parser().parse_args(["--eval-only"])
    default_setup(_cfg(first), None)
    assert _is_locked(first)
    default_setup(_cfg(first), default_argument_parser().parse_args(["--resume"]))
    default_setup(_cfg(first), eval_only)  # evaluation takes the lock too
    assert _is_locked(first)
    default_setup(_cfg(second), eval_only)
    assert _is_locked(second) and not _is_locked(first)
    assert lock_output_dir(str(tmp_path / "second" / ".." / "second")).locked  # the same folder
    release_output_dir_lock()
    assert not _is_locked(second)
    default_setup(_cfg(second), None)
    assert _is_locked(second)


def test_lock_is_a_context_manager(tmp_path):
    with lock_output_dir(str(tmp_path)) as lock:
        assert _is_locked(tmp_path)
    assert not lock.locked and not _is_locked(tmp_path)


@pytest.mark.parametrize("where", ["itself", "parent"])
def test_a_file_is_not_an_output_dir(tmp_path, where):
    file = tmp_path / "model_final.pth"
    file.write_bytes(b"x")
    out = file if where == "itself" else file / "out"
    with pytest.raises(OutputDirError) as e:
        default_setup(_cfg(out), None)
    assert not isinstance(e.value, OutputDirInUseError)
    assert str(out) in str(e.value) and "is a file, not a folder" in str(e.value)
    assert (str(file) in e.value.reason) == (where == "parent")
    assert "\n" not in str(e.value)


def _unwritable_folder(tmp_path):
    """A folder this process cannot create files in: a read-only tmp folder, or, as root (who
    writes there anyway), /sys, where nobody creates files."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if not os.path.isdir("/sys") or os.access("/sys", os.W_OK) and _can_create_in("/sys"):
        pytest.skip("running as root without a folder that root cannot write in (/sys)")
    return "/sys"


def _can_create_in(folder):
    try:
        os.mkdir(os.path.join(folder, "segcore_write_probe"))
    except OSError:
        return False
    os.rmdir(os.path.join(folder, "segcore_write_probe"))
    return True


@pytest.mark.parametrize("case", ["the folder", "a folder inside"])
def test_an_unwritable_output_dir_is_named_with_the_reason(tmp_path, case):
    folder = _unwritable_folder(tmp_path)
    out = os.path.join(folder, "out") if case == "a folder inside" else str(folder)
    try:
        with pytest.raises(OutputDirError) as e:
            default_setup(_cfg(out), None)
    finally:
        if folder != "/sys":
            os.chmod(folder, 0o700)
    assert str(out) in str(e.value)
    assert "permission denied" in e.value.reason or "read-only file system" in e.value.reason
    assert ("cannot create it" in e.value.reason) == (case == "a folder inside")


def _setup_in_workers(out):
    default_setup(_cfg(out), None)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo required")
def test_two_workers_report_the_folder_in_use_to_the_launcher(tmp_path):
    """With launch, the main worker (rank 0) locks OUTPUT_DIR; its refusal reaches every worker and
    is raised in the launching process as it is, not as a traceback in a string."""
    lock_output_dir(str(tmp_path))  # this process (pytest) holds it
    with pytest.raises(OutputDirInUseError, match=f"pid {os.getpid()}") as e:
        launch(_setup_in_workers, 2, dist_url="auto", args=(str(tmp_path),))
    assert e.value.path == str(tmp_path) and e.value.holder["pid"] == os.getpid()
    assert e.value.holder["launcher_pid"] is None  # pytest, which was not started by launch
    assert "Traceback" in str(e.value.__cause__)  # the worker's own, for whoever needs it
    assert sorted(os.listdir(tmp_path)) == [LOCK_FILE_NAME]


def test_train_net_raises_the_typed_error(tmp_path):
    file = tmp_path / "out"
    file.write_text("")
    train_net = load_script("train_net", "train_net.py")
    with pytest.raises(OutputDirError, match="is a file, not a folder"):
        train_net.cli(["--config-file", MASKFORMER_QUICKSTART, "OUTPUT_DIR", str(file), "MODEL.DEVICE", "cpu"])


@pytest.mark.parametrize("num_gpus", ["1", "2"])
def test_train_net_command_line_prints_one_line(tmp_path, num_gpus):
    if num_gpus != "1" and not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo required")
    file = tmp_path / "out"
    file.write_text("")
    command = [sys.executable, "train_net.py", "--config-file", MASKFORMER_QUICKSTART, "--num-gpus", num_gpus,
               "--dist-url", "auto", "OUTPUT_DIR", str(file), "MODEL.DEVICE", "cpu"]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("train_net.py: error: OUTPUT_DIR ")
    assert str(file) in lines[0] and "is a file, not a folder" in lines[0]


def _setup_and_sleep(records, out):
    """A worker of a run that holds OUTPUT_DIR ``out``: records its pid, then sleeps."""
    import time

    from segcore.utils import comm

    default_setup(_cfg(out), None)
    write_record(records, comm.get_rank())
    time.sleep(600)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo required")
def test_run_of_a_launcher_is_refused_then_resumable_after_kill_9_of_the_launcher(tmp_path):
    """The issue's sequence: train_net.py --num-gpus 2 is running; a second run on its folder is
    refused, naming the worker that holds it and its launcher; after kill -9 of the launcher (not
    of the workers) the folder is free again, without anybody removing anything."""
    out, records = tmp_path / "run", tmp_path / "records"
    records.mkdir()
    with running_launcher(_setup_and_sleep, records, str(out)) as (launcher, workers):
        with pytest.raises(OutputDirInUseError) as e:
            lock_output_dir(str(out))
        holder = workers[0]["pid"]
        assert e.value.holder["pid"] == holder and e.value.holder["launcher_pid"] == launcher.pid
        assert f"pid {holder} (a worker of pid {launcher.pid})" in str(e.value)

        launcher.kill()
        launcher.wait(timeout=60)

        def free():
            try:
                return lock_output_dir(str(out))
            except OutputDirInUseError:
                return None

        assert wait_until(free, 60, "the folder is free").locked
