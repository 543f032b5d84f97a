"""Data loaders for training and inference (Detectron2's ``detectron2/data/build.py``).

The training loader is infinite (iteration-based training, as in Detectron2): each process
draws its share of a shuffled index stream (:class:`TrainingSampler`), maps the dataset dicts
in ``DATALOADER.NUM_WORKERS`` worker processes and yields lists of mapped dicts of length
``SOLVER.IMS_PER_BATCH // world_size``.
"""
from __future__ import annotations

import itertools
import logging
import operator
import random
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.utils.data as torchdata

from segcore.config import configurable

from .catalog import DatasetCatalog
from .common import AspectRatioGroupedDataset, DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .samplers import InferenceSampler, TrainingSampler, get_rank_and_world_size

__all__ = [
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


def _seed_all_rng(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)


def worker_init_reset_seed(worker_id: int) -> None:
    """Seed numpy, torch and ``random`` of a data-loader worker (as in Detectron2).

    The seed derives from the worker's torch seed, which the DataLoader draws from the main
    process's torch RNG; so seeding the main process makes the workers' augmentations
    reproducible, while each worker still gets its own stream.
    """
    initial_seed = torch.initial_seed() % 2**31
    _seed_all_rng(initial_seed + worker_id)


def build_batch_data_loader(
    dataset: torchdata.Dataset,
    sampler: torchdata.Sampler,
    total_batch_size: int,
    *,
    aspect_ratio_grouping: bool = False,
    num_workers: int = 0,
    collate_fn: Optional[Callable[[List[Any]], Any]] = None,
):
    """Batch a map-style dataset for training (Detectron2 ``build_batch_data_loader``).

    Args:
        dataset: a map-style dataset (of mapped dicts).
        sampler: an (infinite) index sampler.
        total_batch_size: images per iteration summed over all processes.
        aspect_ratio_grouping: batch landscape and portrait images separately (needs "width"
            and "height" in each mapped dict).
        num_workers: data-loader worker processes (0 = load in this process).
        collate_fn: applied to each batch (a list); default keeps the list.

    Returns:
        An iterable of batches; each batch is a list of ``total_batch_size // world_size``
        mapped elements (incomplete batches are dropped).

    Raises:
        ValueError: ``total_batch_size`` is not a positive multiple of the world size.
    """
    _, world_size = get_rank_and_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"Total batch size (SOLVER.IMS_PER_BATCH = {total_batch_size}) must be a positive multiple of "
            f"the number of processes ({world_size})."
        )
    if num_workers < 0:
        raise ValueError(f"num_workers (DATALOADER.NUM_WORKERS) must be >= 0; got {num_workers}")
    batch_size = total_batch_size // world_size
    if aspect_ratio_grouping:
        data_loader = torchdata.DataLoader(
            dataset,
            sampler=sampler,
            num_workers=num_workers,
            batch_sampler=None,
            collate_fn=operator.itemgetter(0),  # yield the mapped dicts one by one
            worker_init_fn=worker_init_reset_seed,
        )
        grouped = AspectRatioGroupedDataset(data_loader, batch_size)
        return grouped if collate_fn is None else MapDataset(grouped, collate_fn)
    batch_sampler = torchdata.sampler.BatchSampler(sampler, batch_size, drop_last=True)
    return torchdata.DataLoader(
        dataset,
        num_workers=num_workers,
        batch_sampler=batch_sampler,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
        worker_init_fn=worker_init_reset_seed,
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
):
    """The infinite training loader (Detectron2 ``build_detection_train_loader``).

    Call as ``build_detection_train_loader(cfg, mapper=None, dataset=None, sampler=None)`` (the
    config gives DATASETS.TRAIN, SOLVER.IMS_PER_BATCH, DATALOADER.NUM_WORKERS,
    DATALOADER.ASPECT_RATIO_GROUPING, DATALOADER.SAMPLER_TRAIN, DATALOADER.FILTER_EMPTY_ANNOTATIONS;
    the default mapper is ``DatasetMapper(cfg, True)``) or with explicit arguments:

    Args:
        dataset: a list of dataset dicts or a map-style dataset.
        mapper: dataset dict -> model input dict (None = use the elements as they are).
        sampler: index sampler; default ``TrainingSampler(len(dataset))``.
        total_batch_size: images per iteration over all processes.
        aspect_ratio_grouping: batch landscape / portrait images separately.
        num_workers: data-loader worker processes.
        collate_fn: applied to each batch; default keeps the list.

    Returns:
        An infinite iterable of ``list[dict]`` of length ``total_batch_size // world_size``.

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
