"""Building the data loaders for training and inference (Detectron2's ``detectron2/data/build.py``).

The training loader is infinite (iteration-based training, as in Detectron2): each process
draws its share of a shuffled index stream (:class:`TrainingSampler`), maps the dataset dicts
in ``DATALOADER.NUM_WORKERS`` worker processes and yields lists of mapped dicts of length
``SOLVER.IMS_PER_BATCH // world_size``. It is resumable: see
:class:`~segcore.data.train_loader.TrainLoader`, which :func:`build_detection_train_loader` returns.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable, List, Optional, Sequence, Union

import torch.utils.data as torchdata

from segcore.config import configurable

from .catalog import DatasetCatalog
from .common import DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .samplers import InferenceSampler, TrainingSampler, get_rank_and_world_size, shared_random_seed
from .train_loader import TrainLoader, trivial_batch_collator

__all__ = [
    "build_batch_data_loader",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "get_detection_dataset_dicts",
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
