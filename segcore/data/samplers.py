"""Index samplers for training and inference (Detectron2's ``detectron2/data/samplers/distributed_sampler.py``).

Sharding follows ``torch.distributed`` when it is initialized (rank / world size), otherwise
the process is rank 0 of 1.
"""
from __future__ import annotations

import itertools
import logging
from typing import Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.sampler import Sampler

__all__ = ["InferenceSampler", "PositionedSampler", "TrainingSampler", "get_rank_and_world_size", "shared_random_seed"]

logger = logging.getLogger(__name__)


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

    The stream is a function of the seed alone: :meth:`state_dict` saves the seed (a resumed
    run restores it with :meth:`load_state_dict`, so even a seed drawn at random is kept) and
    :class:`PositionedSampler` skips the indices a previous run consumed.
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

    def state_dict(self) -> dict:
        """``{"seed": int, "size": int, "shuffle": bool}``: what decides the index stream."""
        return {"seed": self._seed, "size": self._size, "shuffle": self._shuffle}

    def load_state_dict(self, state_dict: dict) -> None:
        """Use the seed of a saved :meth:`state_dict` (takes effect at the next ``iter()``).

        A different dataset size or shuffle setting is logged as a warning: the stream then
        differs from the saved run's.

        Raises:
            KeyError / TypeError: ``state_dict`` has no int "seed".
        """
        if "seed" not in state_dict:
            raise KeyError(f"TrainingSampler.load_state_dict: no 'seed' in {sorted(state_dict)}")
        seed = state_dict["seed"]
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"TrainingSampler.load_state_dict: 'seed' must be an int, got {type(seed).__name__}")
        for key, mine in (("size", self._size), ("shuffle", self._shuffle)):
            if key in state_dict and state_dict[key] != mine:
                logger.warning(
                    f"TrainingSampler: the saved state has {key}={state_dict[key]!r} but this sampler has "
                    f"{key}={mine!r}; the index stream differs from the saved run's."
                )
        self._seed = int(seed)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self._seed)
        while True:
            if self._shuffle:
                yield from torch.randperm(self._size, generator=g).tolist()
            else:
                yield from range(self._size)


class PositionedSampler(Sampler):
    """The ``(position, index)`` pairs of an (infinite) sampler's stream from a given position on.

    ``position`` counts the elements of ``sampler``'s stream in this process (0, 1, 2, ...). The
    pairs come in stream order: first those at the positions in ``pending`` (elements an earlier
    run had drawn but not yet used, e.g. images waiting in an aspect-ratio bucket), then every
    position from ``start`` on. So a loader can continue exactly where a checkpointed run
    stopped, and can derive each element's randomness from its position.
    """

    def __init__(self, sampler: Iterable[int], start: int = 0, pending: Sequence[int] = ()):
        """
        Args:
            sampler: yields dataset indices (e.g. :class:`TrainingSampler`); iterated anew by each
                ``iter()``, so its stream must be the same every time (a seeded sampler).
            start: the first position to yield after the pending ones.
            pending: earlier positions (< ``start``) to yield first.

        Raises:
            ValueError: a negative ``start``, or a pending position that is negative or >= ``start``.
        """
        start = int(start)
        if start < 0:
            raise ValueError(f"PositionedSampler: start must be >= 0, got {start}")
        pending = sorted(int(p) for p in pending)
        bad = [p for p in pending if not 0 <= p < start]
        if bad:
            raise ValueError(f"PositionedSampler: pending positions must be in [0, start={start}); got {bad}")
        self.sampler = sampler
        self.start = start
        self.pending = pending

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        first = self.pending[0] if self.pending else self.start
        stream = itertools.islice(enumerate(iter(self.sampler)), first, None)  # skipped in C: fast
        pending = set(self.pending)
        for position, index in stream:
            if position >= self.start or position in pending:
                yield position, index


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
