"""Start multi-process (and multi-machine) training, as Detectron2's ``engine/launch.py``.

The worker processes end with the process that launched them: killing the launcher (even with
``kill -9``) kills its workers, so no orphan goes on writing checkpoints into ``OUTPUT_DIR`` or
holding the rendezvous port. On Linux each worker asks the kernel for ``SIGKILL`` at its parent's
death (``prctl(PR_SET_PDEATHSIG)``); on every platform a watchdog thread in each worker ends it
when its parent process changes (POSIX re-parents orphans).
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from segcore.utils import comm

from .cli import USER_ERRORS

__all__ = ["DEFAULT_TIMEOUT", "FAILURE_GRACE_PERIOD", "FORWARDED_ERRORS", "PARENT_POLL_INTERVAL", "launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)

#: seconds between two checks of a worker's watchdog thread that its launcher is still its parent
PARENT_POLL_INTERVAL = 1.0

#: seconds the other workers have to end by themselves after one failed, before SIGTERM (and as
#: long again before SIGKILL)
FAILURE_GRACE_PERIOD = 5.0

#: errors of a worker that ``launch`` raises again, as they are, in the launching process: the user
#: errors (:data:`segcore.engine.cli.USER_ERRORS`), which a command line reports in one line
FORWARDED_ERRORS = USER_ERRORS

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _find_free_port() -> int:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", 0))  # port 0: the OS picks a free port
    port = sock.getsockname()[1]
    sock.close()
    # The port may be taken by another process before it is used; good enough for one machine.
    return port


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> Any:
    """Run ``main_func(*args)`` in ``num_machines * num_gpus_per_machine`` processes.

    With a world size of 1, ``main_func`` is called directly in this process and its result
    returned. Otherwise (returning ``None``) one process per local device is started with
    ``torch.multiprocessing`` (spawn) and joined into a ``torch.distributed`` group: backend "nccl" when CUDA is available (process ``i`` uses GPU
    ``i``), else "gloo", where ``num_gpus_per_machine`` simply means the number of CPU processes.

    Args:
        main_func: a picklable (module-level) function.
        num_gpus_per_machine: processes per machine (``--num-gpus``).
        num_machines: number of machines (``--num-machines``).
        machine_rank: rank of this machine (``--machine-rank``).
        dist_url: rendezvous URL, e.g. ``"tcp://127.0.0.1:50152"``; ``"auto"`` or ``None``
            picks a free local port (single machine only).
        args: arguments of ``main_func``.
        timeout: timeout of the process group's collective operations.

    The workers end when this process ends, however it ends (see the module's docstring).

    Raises:
        ValueError: ``dist_url`` is "auto" / ``None`` with several machines, or invalid counts.
        An error of :data:`FORWARDED_ERRORS` that a worker raised (e.g. ``OutputDirError`` when
            ``default_setup`` found ``OUTPUT_DIR`` in use, or a bad weight file): raised again here
            as it is, with the worker's traceback as its ``__cause__``.
        torch.multiprocessing.ProcessRaisedException: a worker raised another error (its
            traceback included).
        torch.multiprocessing.ProcessExitedException: a worker died (e.g. killed by a signal).
    """
    if num_gpus_per_machine < 1 or num_machines < 1:
        raise ValueError(f"launch needs >= 1 process per machine and >= 1 machine, got {num_gpus_per_machine}, {num_machines}")
    world_size = num_machines * num_gpus_per_machine
    if world_size == 1:
        return main_func(*args)
    if dist_url is None or dist_url == "auto":
        if num_machines != 1:
            raise ValueError("dist_url=auto (or no dist_url) is only supported on one machine")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logging.getLogger(__name__).warning("file:// is not a reliable init_method for multiple machines; prefer tcp://")
    if torch.cuda.is_available() and torch.cuda.device_count() < num_gpus_per_machine:
        raise ValueError(
            f"{num_gpus_per_machine} processes per machine requested but only {torch.cuda.device_count()} GPUs are visible"
        )
    # where a worker leaves an error of FORWARDED_ERRORS (nothing is created unless one fails)
    error_prefix = os.path.join(tempfile.gettempdir(), f"segcore-launch-{os.getpid()}-{uuid.uuid4().hex}")
    try:
        context = mp.start_processes(
            _distributed_worker,
            nprocs=num_gpus_per_machine,
            args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout,
                  os.getpid(), error_prefix),
            daemon=False,
            start_method="spawn",
            join=False,
        )
        # after a worker fails, the others may end by themselves before they are terminated
        while not context.join(grace_period=FAILURE_GRACE_PERIOD):
            pass
    except mp.ProcessRaisedException as e:
        forwarded = _load_forwarded_error(error_prefix, num_gpus_per_machine)
        if forwarded is not None:
            raise forwarded from e
        raise
    finally:
        for local_rank in range(num_gpus_per_machine):
            for path in (_error_file(error_prefix, local_rank), _error_file(error_prefix, local_rank) + ".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies (``prctl``).

    Returns whether it was set (``False`` on other platforms or without a usable libc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), ctypes.c_ulong(0), ctypes.c_ulong(0),
                          ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def _end_orphan(launcher_pid: int) -> None:
    try:
        os.write(2, f"segcore launch: the launching process {launcher_pid} is gone; ending worker "
                    f"{os.getpid()}\n".encode())
    except OSError:
        pass
    os._exit(1)


def _watch_parent(launcher_pid: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != launcher_pid:
            _end_orphan(launcher_pid)


def _end_with_launcher(launcher_pid: int, interval: float = PARENT_POLL_INTERVAL) -> None:
    """Make this worker end when its launcher ``launcher_pid`` dies.

    Sets ``SIGKILL`` as the parent-death signal (Linux; it cannot be ignored, unlike the ``SIGINT``
    that torch's spawn sets, which a launcher started in the background passes on ignored), then
    checks that the launcher is still the parent (it may have died before), and starts a daemon
    thread that checks it every ``interval`` seconds (where there is no ``prctl``). An orphan
    exits at once with status 1.
    """
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != launcher_pid:
        _end_orphan(launcher_pid)
    threading.Thread(target=_watch_parent, args=(launcher_pid, interval), name="segcore-launcher-watchdog",
                     daemon=True).start()


def _error_file(error_prefix: str, local_rank: int) -> str:
    return f"{error_prefix}-rank{local_rank}.pickle"


def _save_forwarded_error(error_prefix: str, local_rank: int, error: BaseException) -> None:
    path = _error_file(error_prefix, local_rank)
    try:
        with open(path + ".tmp", "wb") as f:
            pickle.dump(error, f)
        os.replace(path + ".tmp", path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass  # the launcher then reports the traceback, as for any other error


def _load_forwarded_error(error_prefix: str, nprocs: int) -> BaseException | None:
    for local_rank in range(nprocs):
        try:
            with open(_error_file(error_prefix, local_rank), "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            continue  # none, or unreadable: the worker's traceback is reported instead
    return None


def _distributed_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta = DEFAULT_TIMEOUT,
    launcher_pid: int | None = None,
    error_prefix: str | None = None,
) -> None:
    if launcher_pid is not None:
        _end_with_launcher(launcher_pid)
    backend = _backend()
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    try:
        dist.init_process_group(
            backend=backend, init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
        )
    except (RuntimeError, ValueError, OSError) as e:  # add the URL to rendezvous failures
        logging.getLogger(__name__).error(f"Process group URL: {dist_url}")
        raise RuntimeError(f"Could not initialize the process group at {dist_url} (rank {global_rank}): {e}") from e
    comm.create_local_process_group(num_gpus_per_machine)
    comm.synchronize()
    try:
        main_func(*args)
    except BaseException as e:
        if error_prefix is not None and isinstance(e, FORWARDED_ERRORS):
            _save_forwarded_error(error_prefix, local_rank, e)
        # a worker that failed must not wait for the others: tear down and re-raise
        comm.destroy_process_groups()
        raise
    # Every worker finished: tear the process group down together. Destroying it while another
    # process still holds its gloo connections makes that process abort at exit.
    comm.synchronize()
    comm.destroy_process_groups()
