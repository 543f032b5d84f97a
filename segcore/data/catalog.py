"""``DatasetCatalog`` and ``MetadataCatalog``: datasets by name (as in Detectron2's ``detectron2/data/catalog.py``).

A dataset is registered as a name plus a function returning its ``list[dict]`` (Detectron2
dataset format); the function runs only when ``DatasetCatalog.get(name)`` is called, so a
registered dataset whose files are absent costs nothing until it is used. ``MetadataCatalog``
holds per-dataset facts (class names, colours, ignore label, evaluator type, ...).
"""
from __future__ import annotations

import copy
import logging
import types
from collections import UserDict
from typing import Any, Callable, Dict, List

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "UnknownDatasetError"]


class UnknownDatasetError(KeyError):
    """A dataset name that is not registered in :data:`DatasetCatalog`.

    Attributes:
        name: the unknown name.
        source: where it came from (e.g. ``"DATASETS.TEST"``), or "".
        registered: the registered names, sorted.
    """

    def __init__(self, name: str, registered: List[str], source: str = ""):
        self.name = name
        self.registered = sorted(registered)
        self.source = source
        where = f" (named by {source})" if source else ""
        super().__init__(f"Dataset '{name}'{where} is not registered. Registered datasets: "
                         f"{', '.join(self.registered) or '(none)'}. Register it with DatasetCatalog.register "
                         "(see datasets/README.md) or fix the name.")

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])

    def __reduce__(self):
        return type(self), (self.name, self.registered, self.source)


class _DatasetCatalog(UserDict):
    """A global name -> loader-function dictionary (Detectron2 ``DatasetCatalog``)."""

    def register(self, name: str, func: Callable[[], List[dict]]) -> None:
        """Register ``func`` (no arguments, returns ``list[dict]``) under ``name``.

        Raises:
            TypeError: ``func`` is not callable.
            ValueError: ``name`` is already registered.
        """
        if not callable(func):
            raise TypeError(f"DatasetCatalog.register('{name}', func): func must be callable, got {type(func).__name__}")
        if name in self:
            raise ValueError(f"Dataset '{name}' is already registered!")
        self[name] = func

    def get(self, name: str) -> List[dict]:
        """Call the registered function and return the dataset's ``list[dict]``.

        Raises:
            UnknownDatasetError: ``name`` is not registered (a ``KeyError``; the message lists
                the registered names).
            TypeError: the function did not return a list.
        """
        self.check_registered([name])
        f = self[name]
        dicts = f()
        if not isinstance(dicts, list):
            raise TypeError(f"Dataset '{name}' must return a list of dicts, but its function returned {type(dicts).__name__}")
        return dicts

    def list(self) -> List[str]:
        """The registered dataset names."""
        return list(self.keys())

    def check_registered(self, names, source: str = "") -> None:
        """Raise :class:`UnknownDatasetError` for the first of ``names`` that is not registered.

        Args:
            names: dataset names (e.g. ``cfg.DATASETS.TEST``).
            source: where the names come from, for the message (e.g. ``"DATASETS.TEST"``).
        """
        for name in names:
            if name not in self:
                raise UnknownDatasetError(name, list(self.keys()), source)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (KeyError naming it if absent)."""
        if name not in self:
            raise KeyError(f"Dataset '{name}' is not registered, so it cannot be removed")
        self.pop(name)

    def __str__(self) -> str:
        return "DatasetCatalog(registered datasets: {})".format(", ".join(self.keys()))

    __repr__ = __str__


DatasetCatalog = _DatasetCatalog()
DatasetCatalog.__doc__ = (
    _DatasetCatalog.__doc__
    + """
    Usage::

        DatasetCatalog.register("my_dataset", lambda: load_sem_seg(gt_root, image_root))
        dicts = DatasetCatalog.get("my_dataset")
"""
)


class Metadata(types.SimpleNamespace):
    """Facts about one dataset, as attributes (Detectron2 ``Metadata``).

    Common keys: ``stuff_classes`` (list[str]), ``stuff_colors`` (list of [r, g, b]),
    ``thing_classes``, ``ignore_label`` (int), ``evaluator_type`` (str), ``image_root``,
    ``sem_seg_root``. A value, once set, may only be set again to an equal value.
    """

    # the name of the dataset; set as the first attribute by MetadataCatalog.get
    name: str = "N/A"

    _RENAMED = {
        "class_names": "thing_classes",
        "dataset_id_to_contiguous_id": "thing_dataset_id_to_contiguous_id",
        "stuff_class_names": "stuff_classes",
    }

    def __getattr__(self, key: str) -> Any:
        if key in self._RENAMED:
            logging.getLogger(__name__).warning(
                "Metadata '%s' was renamed to '%s'!", key, self._RENAMED[key]
            )
            return getattr(self, self._RENAMED[key])
        # only reached when the attribute does not exist
        if len(self.__dict__) > 1:
            raise AttributeError(
                f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
                f"Available keys are {sorted(k for k in self.__dict__ if k != 'name')}."
            )
        if self.name not in DatasetCatalog:
            raise AttributeError(
                f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}': "
                f"{UnknownDatasetError(self.name, DatasetCatalog.list())}"
            )
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}': its metadata is empty."
        )

    def __setattr__(self, key: str, val: Any) -> None:
        if key in self._RENAMED:
            logging.getLogger(__name__).warning(
                "Metadata '%s' was renamed to '%s'!", key, self._RENAMED[key]
            )
            key = self._RENAMED[key]
        if key in self.__dict__:
            oldval = self.__dict__[key]
            if not _values_equal(oldval, val):
                raise ValueError(
                    f"Attribute '{key}' in the metadata of '{self.name}' cannot be set to a different value!\n"
                    f"{oldval} != {val}"
                )
        else:
            super().__setattr__(key, val)

    def as_dict(self) -> Dict[str, Any]:
        """A shallow copy of all attributes as a dict."""
        return copy.copy(self.__dict__)

    def set(self, **kwargs: Any) -> "Metadata":
        """Set several attributes at once; returns ``self`` (so calls can be chained)."""
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """The attribute ``key``, or ``default`` when it is not set."""
        try:
            return getattr(self, key)
        except AttributeError:
            return default


def _values_equal(a: Any, b: Any) -> bool:
    try:
        eq = a == b
        if isinstance(eq, bool):
            return eq
        import numpy as np

        return bool(np.all(eq)) and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):
        return a is b


class _MetadataCatalog(UserDict):
    """A global name -> ``Metadata`` dictionary (Detectron2 ``MetadataCatalog``)."""

    def get(self, name: str) -> Metadata:  # type: ignore[override]
        """The Metadata of ``name``, created empty on first access (as in Detectron2)."""
        if not name:
            raise ValueError("MetadataCatalog.get needs a dataset name; got an empty one")
        r = super().get(name, None)
        if r is None:
            r = self[name] = Metadata(name=name)
        return r

    def list(self) -> List[str]:
        """Names that have metadata."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Drop the metadata of ``name`` (KeyError naming it if absent)."""
        if name not in self:
            raise KeyError(f"No metadata for dataset '{name}', so it cannot be removed")
        self.pop(name)

    def __str__(self) -> str:
        return "MetadataCatalog(registered metadata: {})".format(", ".join(self.keys()))

    __repr__ = __str__


MetadataCatalog = _MetadataCatalog()
