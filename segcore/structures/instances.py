"""``Instances``: per-instance fields of one image (as in Detectron2's ``detectron2/structures/instances.py``)."""
from __future__ import annotations

import itertools
from typing import Any, Dict, List, Tuple, Union

import torch

__all__ = ["Instances"]


class Instances:
    """The instances of one image, stored as named fields of equal length (Detectron2 ``Instances``).

    A field is anything with ``__len__`` and indexing: a tensor whose first dimension is the
    instance axis (``gt_classes`` (N,) int64, ``gt_masks`` (N, H, W) bool, ...), a list, or a
    structure such as ``Boxes`` / ``BitMasks``. Attributes starting with ``_`` are private.

    Usage::

        inst = Instances((480, 640))
        inst.gt_classes = torch.tensor([3, 7])
        inst.gt_masks = torch.zeros(2, 480, 640, dtype=torch.bool)
        inst[inst.gt_classes == 3]  # a new Instances with one instance
    """

    def __init__(self, image_size: Tuple[int, int], **kwargs: Any):
        """
        Args:
            image_size: (height, width) of the image in pixels.
            kwargs: fields to set.
        """
        self._image_size = tuple(int(s) for s in image_size)
        self._fields: Dict[str, Any] = {}
        for k, v in kwargs.items():
            self.set(k, v)

    @property
    def image_size(self) -> Tuple[int, int]:
        """(height, width) in pixels."""
        return self._image_size

    def __setattr__(self, name: str, val: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, val)
        else:
            self.set(name, val)

    def __getattr__(self, name: str) -> Any:
        if name == "_fields" or name not in self._fields:
            raise AttributeError(
                f"Cannot find field '{name}' in the given Instances; it has fields {list(self.__dict__.get('_fields', {}))}"
            )
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        """Set field ``name``.

        Raises:
            ValueError: ``len(value)`` differs from the length of the existing fields.
        """
        data_len = len(value)
        if len(self._fields):
            expected = len(self)
            if data_len != expected:
                raise ValueError(
                    f"Adding field '{name}' of length {data_len} to an Instances of length {expected}"
                )
        self._fields[name] = value

    def has(self, name: str) -> bool:
        """Whether the field ``name`` exists."""
        return name in self._fields

    def remove(self, name: str) -> None:
        """Remove the field ``name`` (KeyError if absent)."""
        del self._fields[name]

    def get(self, name: str) -> Any:
        """The field ``name`` (KeyError if absent)."""
        return self._fields[name]

    def get_fields(self) -> Dict[str, Any]:
        """The name -> value dict of all fields (modifying it modifies this object)."""
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> "Instances":
        """A new Instances with ``.to(*args, **kwargs)`` applied to every field that has it."""
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            if hasattr(v, "to"):
                v = v.to(*args, **kwargs)
            ret.set(k, v)
        return ret

    def __getitem__(self, item: Union[int, slice, torch.Tensor]) -> "Instances":
        """Index every field by ``item`` (int, slice, bool mask or index tensor).

        An int keeps the instance axis (the result has length 1).

        Raises:
            IndexError: an int index out of range.
        """
        if type(item) is int:
            n = len(self)
            if item >= n or item < -n:
                raise IndexError(f"Instances index {item} out of range for length {n}")
            item = slice(item, None, n)
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            ret.set(k, v[item])
        return ret

    def __len__(self) -> int:
        for v in self._fields.values():
            # use __len__ because len() has to be int and is not friendly to tracing
            return v.__len__()
        raise NotImplementedError("Empty Instances does not support __len__!")

    def __iter__(self):
        raise NotImplementedError("`Instances` object is not iterable!")

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    @staticmethod
    def cat(instance_lists: List["Instances"]) -> "Instances":
        """Concatenate Instances of the same image along the instance axis.

        Tensors are concatenated with ``torch.cat``, lists are chained, other fields use
        ``type(field).cat``.

        Raises:
            ValueError: empty input, different image sizes, or a field type that cannot be
                concatenated.
        """
        if len(instance_lists) == 0:
            raise ValueError("Instances.cat needs at least one Instances")
        for i in instance_lists:
            if not isinstance(i, Instances):
                raise TypeError(f"Instances.cat takes a list of Instances; got {type(i).__name__}")
        if len(instance_lists) == 1:
            return instance_lists[0]
        image_size = instance_lists[0].image_size
        for i in instance_lists[1:]:
            if i.image_size != image_size:
                raise ValueError(f"Instances.cat: image sizes differ ({image_size} vs {i.image_size})")
        ret = Instances(image_size)
        for k in instance_lists[0]._fields.keys():
            values = [i.get(k) for i in instance_lists]
            v0 = values[0]
            if isinstance(v0, torch.Tensor):
                values = torch.cat(values, dim=0)
            elif isinstance(v0, list):
                values = list(itertools.chain(*values))
            elif hasattr(type(v0), "cat"):
                values = type(v0).cat(values)
            else:
                raise ValueError(f"Instances.cat: unsupported type {type(v0).__name__} for field '{k}'")
            ret.set(k, values)
        return ret

    def __str__(self) -> str:
        s = self.__class__.__name__ + "("
        s += f"num_instances={len(self) if self._fields else 0}, "
        s += f"image_height={self._image_size[0]}, "
        s += f"image_width={self._image_size[1]}, "
        s += "fields=[{}])".format(", ".join(f"{k}: {v}" for k, v in self._fields.items()))
        return s

    __repr__ = __str__
