"""Dataset wrappers for the loaders (Detectron2's ``detectron2/data/common.py``)."""
from __future__ import annotations

import copy
import logging
import pickle
import random
from typing import Any, Callable, Iterable, Iterator, List

import numpy as np
import torch.utils.data as data

__all__ = ["AspectRatioGroupedDataset", "DatasetFromList", "MapDataset"]

logger = logging.getLogger(__name__)


class _MapIterableDataset(data.IterableDataset):
    """Map a function over an iterable dataset, dropping the elements it maps to None."""

    def __init__(self, dataset: Iterable, map_func: Callable[[Any], Any]):
        self._dataset = dataset
        self._map_func = map_func

    def __len__(self) -> int:
        return len(self._dataset)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        for x in map(self._map_func, self._dataset):
            if x is not None:
                yield x


class MapDataset(data.Dataset):
    """Apply ``map_func`` (e.g. a dataset mapper) to each element of a dataset (Detectron2 ``MapDataset``).

    ``map_func`` may return None to reject an element: for a map-style dataset another index is
    then drawn at random from those not rejected during this call (a warning is logged from the
    third retry on); for an iterable dataset the element is skipped. The draw uses Python's global
    ``random`` module, which the training loader seeds from each image's position, so the
    replacement is a function of the position (an interrupted and resumed run draws the same one;
    Detectron2 draws from a generator of its own, whose state depends on the process's history).
    """

    def __init__(self, dataset, map_func: Callable[[Any], Any]):
        """
        Args:
            dataset: a map-style dataset (``__len__`` and ``__getitem__``) or an IterableDataset.
            map_func: element -> mapped element, or None to reject it.
        """
        self._dataset = dataset
        self._map_func = map_func

    def __new__(cls, dataset, map_func):
        if isinstance(dataset, data.IterableDataset):
            return _MapIterableDataset(dataset, map_func)
        return super().__new__(cls)

    def __getnewargs__(self):
        return self._dataset, self._map_func

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int) -> Any:
        """The mapped element ``idx``, or of a random replacement when it maps to None.

        Raises:
            RuntimeError: every element of the dataset was rejected.
        """
        retry_count = 0
        cur_idx = int(idx)
        rejected = set()
        while True:
            mapped = self._map_func(self._dataset[cur_idx])
            if mapped is not None:
                return mapped
            retry_count += 1
            rejected.add(cur_idx)
            if len(rejected) == len(self):
                raise RuntimeError(
                    f"The mapper returned None for every element of a dataset of {len(self)} elements "
                    f"(first rejected index: {idx}); nothing left to load"
                )
            cur_idx = random.randrange(len(self))
            while cur_idx in rejected:
                cur_idx = random.randrange(len(self))
            if retry_count >= 3:
                logger.warning("Failed to apply the mapper to index %d, retry count: %d", idx, retry_count)


class DatasetFromList(data.Dataset):
    """A list as a torch Dataset (Detectron2 ``DatasetFromList``).

    With ``serialize=True`` the elements are pickled into one numpy byte buffer, so forked
    data-loader workers share its memory instead of copying many Python objects.
    """

    def __init__(self, lst: List[Any], copy: bool = True, serialize: bool = True):
        """
        Args:
            lst: the elements.
            copy: deep-copy an element when returning it (only used when not serialized; a
                serialized element is always a fresh object).
            serialize: hold the elements as one pickled byte buffer.
        """
        self._lst = lst
        self._copy = copy
        self._serialize = serialize
        if self._serialize:
            buffers = [np.frombuffer(pickle.dumps(x, protocol=-1), dtype=np.uint8) for x in self._lst]
            self._addr = np.cumsum(np.asarray([len(x) for x in buffers], dtype=np.int64))
            self._lst = np.concatenate(buffers) if buffers else np.zeros(0, dtype=np.uint8)
            logger.info("Serialized %d elements into %.2f MiB", len(buffers), len(self._lst) / 1024**2)

    def __len__(self) -> int:
        return len(self._addr) if self._serialize else len(self._lst)

    def __getitem__(self, idx: int) -> Any:
        if self._serialize:
            start_addr = 0 if idx == 0 else self._addr[idx - 1].item()
            end_addr = self._addr[idx].item()
            return pickle.loads(memoryview(self._lst[start_addr:end_addr]))
        if self._copy:
            return copy.deepcopy(self._lst[idx])
        return self._lst[idx]


class AspectRatioGroupedDataset(data.IterableDataset):
    """Batch elements so that a batch holds only landscape (w > h) or only portrait images.

    Each element must be a dict with "width" and "height" (the mapper's ``check_image_size``
    sets them). Yields lists of ``batch_size`` elements (Detectron2 ``AspectRatioGroupedDataset``).
    """

    def __init__(self, dataset: Iterable[dict], batch_size: int):
        """
        Raises:
            ValueError: ``batch_size`` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"AspectRatioGroupedDataset: batch_size must be >= 1; got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self._buckets: List[List[dict]] = [[] for _ in range(2)]

    def __iter__(self) -> Iterator[List[dict]]:
        for d in self.dataset:
            try:
                w, h = d["width"], d["height"]
            except KeyError as e:
                raise KeyError(
                    f"Aspect-ratio grouping needs 'width' and 'height' in every mapped dict; "
                    f"'{d.get('file_name', '<unknown file>')}' has keys {sorted(d.keys())}"
                ) from e
            bucket = self._buckets[0 if w > h else 1]
            bucket.append(d)
            if len(bucket) == self.batch_size:
                batch = bucket[:]
                # clear the bucket first: code after a yield may never run
                del bucket[:]
                yield batch
