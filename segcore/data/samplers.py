"""Index samplers for training and inference (Detectron2's ``detectron2/data/samplers/distributed_sampler.py``).

Sharding follows ``torch.distributed`` when it is initialized (rank / world size), otherwise
the process is rank 0 of 1.
"""
from __future__ import annotations

import itertools
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.sampler import Sampler

__all__ = ["InferenceSampler", "TrainingSampler", "get_rank_and_world_size", "shared_random_seed"]


def get_rank_and_world_size() -> Tuple[int, int]:
    """(rank, world size) of this process: from torch.distributed if initialized, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shared_random_seed() -> int:
    """A random int in [0, 2**31) drawn from ``numpy.random``, the same on every process.

    In a distributed run every process draws one and all use rank 0's (as Detectron2's
    ``comm.shared_random_seed``); seeding numpy therefore makes it reproducible.
    """
    seed = int(np.random.randint(2**31))
    _, world_size = get_rank_and_world_size()
    if world_size > 1:
        obj = [seed]
        dist.broadcast_object_list(obj, src=0)
        seed = int(obj[0])
    return seed


class TrainingSampler(Sampler):
    """An infinite stream of indices, shared out among processes (Detectron2 ``TrainingSampler``).

    The stream is ``shuffle(range(size)) + shuffle(range(size)) + ...`` (or the plain ranges when
    ``shuffle=False``), made from a torch Generator seeded with ``seed``; process ``rank`` of
    ``world_size`` takes elements ``rank, rank + world_size, ...`` of it, so processes see disjoint
    indices within each pass.
    """

    def __init__(self, size: int, shuffle: bool = True, seed: Optional[int] = None):
        """
        Args:
            size: number of elements of the dataset.
            shuffle: shuffle each pass.
            seed: seed of the shuffle, the same on every process; None draws one with
                :func:`shared_random_seed`.

        Raises:
            TypeError / ValueError: ``size`` is not a positive int.
        """
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise TypeError(f"TrainingSampler(size=) expects an int; got {type(size).__name__}")
        if size <= 0:
            raise ValueError(f"TrainingSampler(size=) expects a positive int; got {size} (is the dataset empty?)")
        self._size = int(size)
        self._shuffle = shuffle
        if seed is None:
            seed = shared_random_seed()
        self._seed = int(seed)
        self._rank, self._world_size = get_rank_and_world_size()

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self._rank, None, self._world_size)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self._seed)
        while True:
            if self._shuffle:
                yield from torch.randperm(self._size, generator=g).tolist()
            else:
                yield from range(self._size)


class InferenceSampler(Sampler):
    """Each index exactly once, split into contiguous shards across processes (Detectron2 ``InferenceSampler``).

    Shard sizes differ by at most one (the first ``size % world_size`` processes get one more),
    so the union over processes is exactly ``range(size)``.
    """

    def __init__(self, size: int):
        """
        Raises:
            ValueError: ``size`` <= 0.
        """
        if size <= 0:
            raise ValueError(f"InferenceSampler(size=) expects a positive int; got {size} (is the dataset empty?)")
        self._size = int(size)
        self._rank, self._world_size = get_rank_and_world_size()
        self._local_indices = self._get_local_indices(self._size, self._world_size, self._rank)

    @staticmethod
    def _get_local_indices(total_size: int, world_size: int, rank: int) -> range:
        shard_size = total_size // world_size
        left = total_size % world_size
        shard_sizes = [shard_size + int(r < left) for r in range(world_size)]
        begin = sum(shard_sizes[:rank])
        end = min(sum(shard_sizes[: rank + 1]), total_size)
        return range(begin, end)

    def __iter__(self) -> Iterator[int]:
        yield from self._local_indices

    def __len__(self) -> int:
        return len(self._local_indices)
