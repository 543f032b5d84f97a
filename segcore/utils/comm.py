"""Helpers for multi-process (``torch.distributed``) training, as in Detectron2's ``utils/comm.py``.

Every function works unchanged in a single process (nothing initialized): the world size is 1,
the rank 0, gathers return a one-element list and barriers return at once. Object gathers go
through a gloo process group, so they work on CPU-only machines and with NCCL training alike.
"""
from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "all_gather",
    "create_local_process_group",
    "destroy_process_groups",
    "gather",
    "get_local_rank",
    "get_local_size",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "reduce_dict",
    "shared_random_seed",
    "synchronize",
]

# The process group of the processes on this machine; set by :func:`create_local_process_group`
# (which :func:`segcore.engine.launch` calls); :func:`get_local_rank` and :func:`get_local_size`
# read it (DDP's device of a process, the Cityscapes evaluators' per-machine check).
_LOCAL_PROCESS_GROUP = None
_MISSING_LOCAL_PG_ERROR = (
    "Local process group is not yet created! Please use segcore.engine.launch() to start processes "
    "and initialize pytorch process group. If you need to start processes in other ways, please "
    "call comm.create_local_process_group(num_workers_per_machine) after calling "
    "torch.distributed.init_process_group()."
)


def _is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if _is_dist() else 1


def get_rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    return dist.get_rank() if _is_dist() else 0


@functools.lru_cache()
def create_local_process_group(num_workers_per_machine: int) -> None:
    """Create the per-machine process group used by :func:`get_local_rank` / :func:`get_local_size`.

    Must be called by every process after ``torch.distributed.init_process_group``; assumes all
    machines run ``num_workers_per_machine`` processes with consecutive global ranks.

    Raises:
        ValueError: the world size is not a multiple of ``num_workers_per_machine``.
    """
    global _LOCAL_PROCESS_GROUP
    if _LOCAL_PROCESS_GROUP is not None:
        return
    world_size = get_world_size()
    if world_size % num_workers_per_machine != 0:
        raise ValueError(
            f"World size {world_size} is not a multiple of the {num_workers_per_machine} workers per machine"
        )
    num_machines = world_size // num_workers_per_machine
    machine_rank = get_rank() // num_workers_per_machine
    for i in range(num_machines):
        ranks = list(range(i * num_workers_per_machine, (i + 1) * num_workers_per_machine))
        group = dist.new_group(ranks)  # every process must create every group
        if i == machine_rank:
            _LOCAL_PROCESS_GROUP = group


def destroy_process_groups() -> None:
    """Destroy every process group (``torch.distributed.destroy_process_group``) and drop this
    module's reference to the per-machine group, so that no backend object (and its threads) is left
    for the interpreter's exit to tear down."""
    global _LOCAL_PROCESS_GROUP
    _LOCAL_PROCESS_GROUP = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_local_rank() -> int:
    """Rank of this process among the processes of its machine (0 when not distributed).

    With processes started by other launchers (e.g. ``torchrun``) and no local group created,
    the ``LOCAL_RANK`` environment variable is used.
    """
    if not _is_dist():
        return 0
    if _LOCAL_PROCESS_GROUP is None:
        if "LOCAL_RANK" in os.environ:
            return int(os.environ["LOCAL_RANK"])
        raise RuntimeError(_MISSING_LOCAL_PG_ERROR)
    return dist.get_rank(group=_LOCAL_PROCESS_GROUP)


def get_local_size() -> int:
    """Number of processes on this machine (1 when not distributed)."""
    if not _is_dist():
        return 1
    if _LOCAL_PROCESS_GROUP is None:
        if "LOCAL_WORLD_SIZE" in os.environ:
            return int(os.environ["LOCAL_WORLD_SIZE"])
        raise RuntimeError(_MISSING_LOCAL_PG_ERROR)
    return dist.get_world_size(group=_LOCAL_PROCESS_GROUP)


def is_main_process() -> bool:
    """True on global rank 0 (and always in a single process)."""
    return get_rank() == 0


def synchronize() -> None:
    """Barrier among all processes; a no-op when not distributed."""
    if not _is_dist() or dist.get_world_size() == 1:
        return
    if dist.get_backend() == dist.Backend.NCCL and torch.cuda.is_available():
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@functools.lru_cache()
def _get_global_gloo_group():
    """A gloo group containing all ranks (the default group itself when it is gloo)."""
    if dist.get_backend() == "nccl":
        return dist.new_group(backend="gloo")
    return dist.group.WORLD


def all_gather(data: Any, group=None) -> list[Any]:
    """Gather an arbitrary picklable object from every process to every process.

    Args:
        data: any picklable object.
        group: a process group; default: a gloo group of all ranks.

    Returns:
        list: ``data`` from each rank of the group, in rank order (``[data]`` when not distributed).
    """
    if get_world_size() == 1:
        return [data]
    if group is None:
        group = _get_global_gloo_group()
    world_size = dist.get_world_size(group)
    if world_size == 1:
        return [data]
    output: list[Any] = [None for _ in range(world_size)]
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group=None) -> list[Any]:
    """Gather an arbitrary picklable object from every process to rank ``dst``.

    Returns:
        list: on rank ``dst``, ``data`` from each rank in rank order; on other ranks, ``[]``.
    """
    if get_world_size() == 1:
        return [data]
    if group is None:
        group = _get_global_gloo_group()
    world_size = dist.get_world_size(group=group)
    if world_size == 1:
        return [data]
    rank = dist.get_rank(group=group)
    if rank == dst:
        output: list[Any] = [None for _ in range(world_size)]
        dist.gather_object(data, output, dst=dst, group=group)
        return output
    dist.gather_object(data, None, dst=dst, group=group)
    return []


def shared_random_seed() -> int:
    """A random integer in [0, 2**31) that is the same on all processes (rank 0's draw).

    All processes must call this function together.
    """
    ints = np.random.randint(2**31)
    return int(all_gather(ints)[0])


def reduce_dict(input_dict: dict[str, torch.Tensor], average: bool = True) -> dict[str, torch.Tensor]:
    """Reduce scalar tensors from all processes to rank 0 (sum, or mean when ``average``).

    Args:
        input_dict: name -> scalar tensor (on the device of the process group's backend).
        average: divide the sum by the world size.

    Returns:
        dict with the same keys; only rank 0's values hold the reduction.
    """
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[k] for k in names], dim=0)
        dist.reduce(values, dst=0)
        if dist.get_rank() == 0 and average:
            values /= world_size
        return dict(zip(names, values))
