"""Start multi-process (and multi-machine) training, as Detectron2's ``engine/launch.py``."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from segcore.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)


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

    Raises:
        ValueError: ``dist_url`` is "auto" / ``None`` with several machines, or invalid counts.
        torch.multiprocessing.ProcessRaisedException: a worker raised (its traceback included).
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
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout),
        daemon=False,
        start_method="spawn",
    )


def _distributed_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> None:
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
    except BaseException:
        # a worker that failed must not wait for the others: tear down and re-raise
        dist.destroy_process_group()
        raise
    # Every worker finished: tear the process group down together. Destroying it while another
    # process still holds its gloo connections makes that process abort at exit.
    comm.synchronize()
    dist.destroy_process_group()
