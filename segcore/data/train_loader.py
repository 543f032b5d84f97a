"""The resumable training loader (:class:`TrainLoader`): what
:func:`~segcore.data.build.build_detection_train_loader` and
:func:`~segcore.data.build.build_batch_data_loader` return.

The randomness of each element's mapping (augmentations) is seeded from the loader's seed, the
process rank and the element's position in the process's index stream, so it does not depend on
which worker maps it nor on what ran before; its :meth:`~TrainLoader.state_dict` (the seed, the
next position, the positions waiting in aspect-ratio buckets, the sampler's seed) lets a resumed
run continue with exactly the batches an uninterrupted run would have drawn.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.utils.data as torchdata

from segcore.utils.env import derive_seed, fork_rng, reseed_all_rng

from .common import AspectRatioGroupedDataset
from .samplers import PositionedSampler, get_rank_and_world_size

__all__ = ["TrainLoader", "trivial_batch_collator", "worker_init_reset_seed"]


def trivial_batch_collator(batch: List[Any]) -> List[Any]:
    """A collate function that keeps the batch as a list (no stacking)."""
    return batch


def worker_init_reset_seed(worker_id: int) -> None:
    """Seed numpy, torch and ``random`` of a data-loader worker (as in Detectron2).

    The seed derives from the worker's torch seed, which the DataLoader draws from its
    ``generator`` (or the main process's torch RNG without one); so each worker gets its own
    stream. The training loader (:class:`TrainLoader`) re-seeds these generators for every
    element from its position anyway, so what a worker draws there does not depend on this seed.
    """
    initial_seed = torch.initial_seed() % 2**31
    reseed_all_rng(initial_seed + worker_id, cuda=False)


class _PositionSeededDataset(torchdata.Dataset):
    """``(position, index) -> (position, dataset[index])`` with Python's, NumPy's and torch's
    (CPU) generators seeded from ``(seed, rank, position)`` while ``dataset[index]`` runs.

    In the main process (no data-loader worker) the generators' states are restored afterwards,
    so loading leaves the training's random streams alone: a run draws the same numbers with
    any number of workers.
    """

    def __init__(self, dataset: torchdata.Dataset, seed: int, rank: int):
        self.dataset = dataset
        self.seed = seed
        self.rank = rank

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Tuple[int, int]) -> Tuple[int, Any]:
        position, index = key
        sample_seed = derive_seed(self.seed, "sample", self.rank, position)
        if torchdata.get_worker_info() is not None:
            reseed_all_rng(sample_seed, cuda=False)
            return position, self.dataset[index]
        with fork_rng():
            reseed_all_rng(sample_seed, cuda=False)
            return position, self.dataset[index]


class _PositionedCollate:
    """Collate ``[(position, element), ...]`` into ``(positions, collate_fn(elements))`` (picklable)."""

    def __init__(self, collate_fn: Callable[[List[Any]], Any]):
        self.collate_fn = collate_fn

    def __call__(self, batch: List[Tuple[int, Any]]) -> Tuple[List[int], Any]:
        return [p for p, _ in batch], self.collate_fn([x for _, x in batch])


def _check_int(value: Any, what: str, minimum: int = 0) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"TrainLoader.load_state_dict: {what} must be an int >= {minimum}, got {value!r}")
    return int(value)


class TrainLoader:
    """The infinite, resumable training loader that :func:`build_batch_data_loader` returns.

    Iterating yields lists of ``batch_size`` mapped elements (or ``collate_fn`` of them), as
    Detectron2's loader. What differs is that the stream can be saved and continued:

    * each element is the one at a *position* of the process's index stream (0, 1, 2, ...);
      the randomness of its mapping (augmentations) is seeded from ``(seed, rank, position)``
      (see :class:`_PositionSeededDataset`), so it is the same in any data-loader worker, in the
      main process, and after a resume;
    * :meth:`state_dict` gives ``{"seed", "position", "pending", "sampler"}``: the next position
      to draw, the positions drawn but still waiting in an aspect-ratio bucket, and the
      sampler's own state (the seed of :class:`TrainingSampler`);
    * after :meth:`load_state_dict`, the next ``iter()`` draws the pending positions again
      (they refill the buckets exactly) and continues from ``position``: the batches are those
      an uninterrupted run would have yielded.

    The state describes the batches handed out by the most recent iterator (prefetched but
    unused elements are not counted). With aspect-ratio grouping the positions differ between
    processes (:attr:`state_differs_across_ranks`).

    Attributes:
        dataset, sampler, batch_size, aspect_ratio_grouping, num_workers, collate_fn, seed.
    """

    def __init__(
        self,
        dataset: torchdata.Dataset,
        sampler: torchdata.Sampler,
        batch_size: int,
        *,
        aspect_ratio_grouping: bool = False,
        num_workers: int = 0,
        collate_fn: Optional[Callable[[List[Any]], Any]] = None,
        seed: int,
    ):
        """
        Args:
            dataset: a map-style dataset (of mapped elements).
            sampler: an infinite index sampler whose stream is the same at every ``iter()``.
            batch_size: elements per batch in this process.
            aspect_ratio_grouping: batch landscape and portrait images separately (needs
                "width" and "height" in each mapped dict).
            num_workers: data-loader worker processes (0 = map in this process).
            collate_fn: applied to each batch (a list); None keeps the list.
            seed: seeds every element's mapping (with the rank and its position) and the
                DataLoader's generator.

        Raises:
            ValueError: ``batch_size`` < 1 or ``num_workers`` < 0.
        """
        if batch_size < 1:
            raise ValueError(f"TrainLoader: batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers (DATALOADER.NUM_WORKERS) must be >= 0; got {num_workers}")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.aspect_ratio_grouping = aspect_ratio_grouping
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.seed = int(seed)
        self._rank, _ = get_rank_and_world_size()
        self._position = 0
        self._pending: List[int] = []

    @property
    def state_differs_across_ranks(self) -> bool:
        """Whether processes can be at different positions after the same number of batches
        (with aspect-ratio grouping a batch takes as many elements as it takes to fill a bucket)."""
        return self.aspect_ratio_grouping

    def state_dict(self) -> dict:
        """This process's position in the stream: ``{"seed": int, "position": int, "pending":
        [int, ...], "sampler": sampler.state_dict()}`` ("sampler" only for a sampler with one)."""
        state = {"seed": self.seed, "position": self._position, "pending": list(self._pending)}
        if callable(getattr(self.sampler, "state_dict", None)):
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from a saved :meth:`state_dict` at the next ``iter()``.

        Raises:
            ValueError: a missing key, or a value of the wrong type or range (named).
        """
        if not isinstance(state_dict, dict):
            raise ValueError(f"TrainLoader.load_state_dict expects a dict, got {type(state_dict).__name__}")
        missing = [k for k in ("seed", "position", "pending") if k not in state_dict]
        if missing:
            raise ValueError(f"TrainLoader.load_state_dict: missing {missing} in the saved state {sorted(state_dict)}")
        seed = _check_int(state_dict["seed"], "'seed'")
        position = _check_int(state_dict["position"], "'position'")
        pending = state_dict["pending"]
        if not isinstance(pending, (list, tuple)):
            raise ValueError(f"TrainLoader.load_state_dict: 'pending' must be a list, got {type(pending).__name__}")
        pending = sorted(_check_int(p, "each of 'pending'") for p in pending)
        if any(p >= position for p in pending):
            raise ValueError(f"TrainLoader.load_state_dict: pending positions {pending} must be < position {position}")
        if "sampler" in state_dict and callable(getattr(self.sampler, "load_state_dict", None)):
            self.sampler.load_state_dict(state_dict["sampler"])
        self.seed, self._position, self._pending = seed, position, pending

    def _data_loader(self, positions: PositionedSampler) -> torchdata.DataLoader:
        dataset = _PositionSeededDataset(self.dataset, self.seed, self._rank)
        generator = torch.Generator()  # the workers' base seed: not drawn from the global RNG
        generator.manual_seed(derive_seed(self.seed, "loader", self._rank))
        if self.aspect_ratio_grouping:
            return torchdata.DataLoader(
                dataset,
                sampler=positions,
                num_workers=self.num_workers,
                collate_fn=operator.itemgetter(0),  # yield the (position, mapped element) pairs one by one
                worker_init_fn=worker_init_reset_seed,
                generator=generator,
            )
        batch_sampler = torchdata.sampler.BatchSampler(positions, self.batch_size, drop_last=True)
        return torchdata.DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=self.num_workers,
            collate_fn=_PositionedCollate(self.collate_fn or trivial_batch_collator),
            worker_init_fn=worker_init_reset_seed,
            generator=generator,
        )

    def __iter__(self) -> Iterator[Any]:
        positions = PositionedSampler(self.sampler, self._position, self._pending)
        loader = self._data_loader(positions)
        if self.aspect_ratio_grouping:
            yield from self._grouped_batches(loader)
            return
        remaining = set(self._pending)
        for batch_positions, batch in loader:
            self._position = max(self._position, max(batch_positions) + 1)
            if remaining:
                remaining.difference_update(batch_positions)
                self._pending = sorted(remaining)
            yield batch

    def _grouped_batches(self, loader: torchdata.DataLoader) -> Iterator[Any]:
        waiting: Dict[int, int] = {}  # id(mapped element) -> position, for the elements in a bucket

        def elements():
            for position, element in loader:
                waiting[id(element)] = position
                self._position = max(self._position, position + 1)
                yield element

        for batch in AspectRatioGroupedDataset(elements(), self.batch_size):
            for element in batch:
                waiting.pop(id(element), None)
            self._pending = sorted(waiting.values())
            yield batch if self.collate_fn is None else self.collate_fn(batch)
