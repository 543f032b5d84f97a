"""Data loaders for training and inference (Detectron2's ``detectron2/data/build.py``).

The training loader is infinite (iteration-based training, as in Detectron2): each process
draws its share of a shuffled index stream (:class:`TrainingSampler`), maps the dataset dicts
in ``DATALOADER.NUM_WORKERS`` worker processes and yields lists of mapped dicts of length
``SOLVER.IMS_PER_BATCH // world_size``.

The training loader is resumable (:class:`TrainLoader`): the randomness of each element's
mapping (augmentations) is seeded from the loader's seed, the process rank and the element's
position in the process's index stream, so it does not depend on which worker maps it nor on
what ran before; its :meth:`~TrainLoader.state_dict` (the seed, the next position, the
positions waiting in aspect-ratio buckets, the sampler's seed) lets a resumed run continue
with exactly the batches an uninterrupted run would have drawn.
"""
from __future__ import annotations

import itertools
import logging
import operator
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.utils.data as torchdata

from segcore.config import configurable
from segcore.utils.env import derive_seed, fork_rng, reseed_all_rng

from .catalog import DatasetCatalog
from .common import AspectRatioGroupedDataset, DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .samplers import (
    InferenceSampler,
    PositionedSampler,
    TrainingSampler,
    get_rank_and_world_size,
    shared_random_seed,
)

__all__ = [
    "TrainLoader",
    "build_batch_data_loader",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "get_detection_dataset_dicts",
    "trivial_batch_collator",
    "worker_init_reset_seed",
]

logger = logging.getLogger(__name__)


def filter_images_with_only_crowd_annotations(dataset_dicts: List[dict]) -> List[dict]:
    """Drop dicts whose "annotations" are all crowd (``iscrowd=1``) or empty (as in Detectron2)."""

    def valid(anns):
        return any(ann.get("iscrowd", 0) == 0 for ann in anns)

    num_before = len(dataset_dicts)
    dataset_dicts = [x for x in dataset_dicts if valid(x["annotations"])]
    logger.info(
        "Removed %d images with no usable annotations. %d images left.", num_before - len(dataset_dicts), len(dataset_dicts)
    )
    return dataset_dicts


def get_detection_dataset_dicts(names: Union[str, Sequence[str]], filter_empty: bool = True) -> List[dict]:
    """Load and concatenate the dataset dicts of registered datasets.

    Args:
        names: a dataset name or a list of names (registered in :data:`DatasetCatalog`).
        filter_empty: drop images without non-crowd instance annotations; only applies to
            dicts with "annotations" (semantic-segmentation dicts are kept as they are).

    Returns:
        list[dict] in Detectron2 dataset format.

    Raises:
        ValueError: no names, a dataset with zero items (named), or nothing left after filtering.
        KeyError: a name that is not registered.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("get_detection_dataset_dicts: no dataset names given (is DATASETS.TRAIN / DATASETS.TEST empty?)")
    dataset_dicts = [DatasetCatalog.get(name) for name in names]
    for name, dicts in zip(names, dataset_dicts):
        if len(dicts) == 0:
            raise ValueError(f"Dataset '{name}' is empty: its loader returned zero items.")
    dataset_dicts = list(itertools.chain.from_iterable(dataset_dicts))
    has_instances = "annotations" in dataset_dicts[0]
    if filter_empty and has_instances:
        dataset_dicts = filter_images_with_only_crowd_annotations(dataset_dicts)
    if len(dataset_dicts) == 0:
        raise ValueError(f"No valid data found in {', '.join(names)} (every image was filtered out).")
    return dataset_dicts


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


def build_batch_data_loader(
    dataset: torchdata.Dataset,
    sampler: torchdata.Sampler,
    total_batch_size: int,
    *,
    aspect_ratio_grouping: bool = False,
    num_workers: int = 0,
    collate_fn: Optional[Callable[[List[Any]], Any]] = None,
    seed: Optional[int] = None,
) -> "TrainLoader":
    """Batch a map-style dataset for training (Detectron2 ``build_batch_data_loader``).

    Args:
        dataset: a map-style dataset (of mapped dicts).
        sampler: an (infinite) index sampler whose stream is the same at every ``iter()``
            (e.g. :class:`TrainingSampler`).
        total_batch_size: images per iteration summed over all processes.
        aspect_ratio_grouping: batch landscape and portrait images separately (needs "width"
            and "height" in each mapped dict).
        num_workers: data-loader worker processes (0 = load in this process).
        collate_fn: applied to each batch (a list); default keeps the list.
        seed: seeds the random mapping of every element (with the rank and the element's
            position in the stream) and the DataLoader's generator; None draws one with
            :func:`shared_random_seed` (reproducible once NumPy is seeded). Detectron2 uses
            ``seed`` for the generator only.

    Returns:
        :class:`TrainLoader`: an infinite iterable of batches; each batch is a list of
        ``total_batch_size // world_size`` mapped elements (incomplete batches are dropped),
        with ``state_dict()`` / ``load_state_dict()`` to save and continue the stream.

    Raises:
        ValueError: ``total_batch_size`` is not a positive multiple of the world size, or
            ``num_workers`` < 0.
    """
    _, world_size = get_rank_and_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"Total batch size (SOLVER.IMS_PER_BATCH = {total_batch_size}) must be a positive multiple of "
            f"the number of processes ({world_size})."
        )
    if seed is None:
        seed = shared_random_seed()
    return TrainLoader(
        dataset,
        sampler,
        total_batch_size // world_size,
        aspect_ratio_grouping=aspect_ratio_grouping,
        num_workers=num_workers,
        collate_fn=collate_fn,
        seed=seed,
    )


def _build_training_sampler(cfg, dataset) -> torchdata.Sampler:
    return TrainingSampler(len(dataset))


#: DATALOADER.SAMPLER_TRAIN -> function(cfg, dataset) building the sampler
TRAIN_SAMPLERS = {"TrainingSampler": _build_training_sampler}


def _mapped_dataset(dataset, mapper: Optional[Callable[[Any], Any]], loader: str):
    """A list of dataset dicts as a map-style dataset, with ``mapper`` applied to each element.

    Raises:
        ValueError: an empty list (the message names ``loader``).
    """
    if isinstance(dataset, list):
        if len(dataset) == 0:
            raise ValueError(f"{loader}: the dataset is empty")
        dataset = DatasetFromList(dataset, copy=False)
    return MapDataset(dataset, mapper) if mapper is not None else dataset


def _train_loader_from_config(cfg, mapper=None, *, dataset=None, sampler=None) -> dict:
    if dataset is None:
        dataset = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    if mapper is None:
        mapper = DatasetMapper(cfg, True)
    if sampler is None:
        sampler_name = cfg.DATALOADER.SAMPLER_TRAIN
        if sampler_name not in TRAIN_SAMPLERS:
            raise ValueError(
                f"Unknown DATALOADER.SAMPLER_TRAIN '{sampler_name}'; available: {sorted(TRAIN_SAMPLERS)}"
            )
        logger.info("Using training sampler %s", sampler_name)
        sampler = TRAIN_SAMPLERS[sampler_name](cfg, dataset)
    return {
        "dataset": dataset,
        "sampler": sampler,
        "mapper": mapper,
        "total_batch_size": cfg.SOLVER.IMS_PER_BATCH,
        "aspect_ratio_grouping": cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
        "seed": cfg.SEED if cfg.SEED >= 0 else None,
    }


@configurable(from_config=_train_loader_from_config)
def build_detection_train_loader(
    dataset,
    *,
    mapper: Optional[Callable[[Any], Any]],
    sampler: Optional[torchdata.Sampler] = None,
    total_batch_size: int,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    collate_fn: Optional[Callable[[List[Any]], Any]] = None,
    seed: Optional[int] = None,
) -> "TrainLoader":
    """The infinite, resumable training loader (Detectron2 ``build_detection_train_loader``).

    Call as ``build_detection_train_loader(cfg, mapper=None, dataset=None, sampler=None)`` (the
    config gives DATASETS.TRAIN, SOLVER.IMS_PER_BATCH, DATALOADER.NUM_WORKERS,
    DATALOADER.ASPECT_RATIO_GROUPING, DATALOADER.SAMPLER_TRAIN, DATALOADER.FILTER_EMPTY_ANNOTATIONS,
    and ``SEED`` when >= 0 as the loader's seed; the default mapper is ``DatasetMapper(cfg, True)``)
    or with explicit arguments:

    Args:
        dataset: a list of dataset dicts or a map-style dataset.
        mapper: dataset dict -> model input dict (None = use the elements as they are).
        sampler: index sampler; default ``TrainingSampler(len(dataset))``.
        total_batch_size: images per iteration over all processes.
        aspect_ratio_grouping: batch landscape / portrait images separately.
        num_workers: data-loader worker processes.
        collate_fn: applied to each batch; default keeps the list.
        seed: the loader's seed (see :func:`build_batch_data_loader`); None draws one.

    Returns:
        :class:`TrainLoader`: an infinite iterable of ``list[dict]`` of length
        ``total_batch_size // world_size``, resumable through ``state_dict()`` / ``load_state_dict()``.

    Raises:
        ValueError: an empty dataset, or a batch size not divisible by the world size.
    """
    dataset = _mapped_dataset(dataset, mapper, "build_detection_train_loader")
    if sampler is None:
        sampler = TrainingSampler(len(dataset))
    if not isinstance(sampler, torchdata.Sampler):
        raise TypeError(f"sampler must be a torch.utils.data.Sampler; got {type(sampler).__name__}")
    return build_batch_data_loader(
        dataset,
        sampler,
        total_batch_size,
        aspect_ratio_grouping=aspect_ratio_grouping,
        num_workers=num_workers,
        collate_fn=collate_fn,
        seed=seed,
    )


def _test_loader_from_config(cfg, dataset_name, mapper=None) -> dict:
    if isinstance(dataset_name, str):
        dataset_name = [dataset_name]
    dataset = get_detection_dataset_dicts(dataset_name, filter_empty=False)
    if mapper is None:
        mapper = DatasetMapper(cfg, False)
    return {"dataset": dataset, "mapper": mapper, "num_workers": cfg.DATALOADER.NUM_WORKERS}


@configurable(from_config=_test_loader_from_config)
def build_detection_test_loader(
    dataset,
    *,
    mapper: Optional[Callable[[Any], Any]],
    sampler: Optional[torchdata.Sampler] = None,
    batch_size: int = 1,
    num_workers: int = 0,
    collate_fn: Optional[Callable[[List[Any]], Any]] = None,
) -> torchdata.DataLoader:
    """The inference loader: every image exactly once, in order (Detectron2 ``build_detection_test_loader``).

    Call as ``build_detection_test_loader(cfg, dataset_name, mapper=None)`` (default mapper
    ``DatasetMapper(cfg, False)``, DATALOADER.NUM_WORKERS workers) or with explicit arguments:

    Args:
        dataset: a list of dataset dicts or a map-style dataset.
        mapper: dataset dict -> model input dict (None = use the elements as they are).
        sampler: default :class:`InferenceSampler` (contiguous shards over processes).
        batch_size: images per batch in this process (1 as in Detectron2).
        num_workers: data-loader worker processes.
        collate_fn: default keeps the batch as a list.

    Returns:
        A DataLoader yielding ``list[dict]`` of length ``batch_size`` (the last may be shorter).
    """
    dataset = _mapped_dataset(dataset, mapper, "build_detection_test_loader")
    if sampler is None:
        sampler = InferenceSampler(len(dataset))
    return torchdata.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
    )
