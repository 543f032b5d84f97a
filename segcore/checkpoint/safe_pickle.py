"""A restricted unpickler for weight files: containers, numbers, strings and NumPy arrays only.

Detectron2 ``.pkl`` checkpoints are plain pickles of ``{"model": {name: ndarray}, ...}``.
Unpickling an untrusted file with :mod:`pickle` can run any code (a ``__reduce__`` that calls
``os.system``); :func:`safe_load` admits only the globals needed to rebuild such data:

* Python builtins: ``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``bytearray``,
  ``complex`` and ``collections.OrderedDict`` (numbers, strings and bytes need no global);
* ``_codecs.encode`` (how Python 3 pickles ``bytes`` at protocol 2, e.g. NumPy array data);
* NumPy: ``multiarray._reconstruct``, ``multiarray.scalar``, ``numeric._frombuffer``
  (protocol 5), ``ndarray`` and ``dtype`` (under ``numpy.core`` or ``numpy._core``), and the
  ``numpy.dtypes.*DType`` classes.

Anything else raises :class:`UnsafePickleError` naming the refused global. Object arrays are
safe too: their elements go through the same restricted loader.
"""
from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
from typing import IO, Any

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "safe_load", "safe_loads"]

_ALLOWED_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "bytearray", "complex"})
_NUMPY_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED_NUMPY_MULTIARRAY = frozenset({"_reconstruct", "scalar"})
_NUMPY_NUMERIC_MODULES = ("numpy.core.numeric", "numpy._core.numeric")
_ALLOWED_NUMPY_NUMERIC = frozenset({"_frombuffer"})
_ALLOWED_NUMPY_TOPLEVEL = frozenset({"ndarray", "dtype"})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global (class or function) that the restricted loader refuses."""


def _resolve_numpy(submodule: str, name: str) -> Any:
    # NumPy 2 moved numpy.core to numpy._core; files written by NumPy 1 name numpy.core.
    try:
        module = importlib.import_module("numpy._core." + submodule)
    except ImportError:
        module = importlib.import_module("numpy.core." + submodule)
    return getattr(module, name)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only the allow-list of this module.

    Args:
        file: a binary file object.
        source: a name for error messages (e.g. the file path).
        encoding: how to decode Python 2 ``str`` objects (``"latin1"`` keeps NumPy data intact).
    """

    def __init__(self, file: IO[bytes], *, source: str = "<pickle>", encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocols 0-2): "__builtin__.set" -> "builtins.set", as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return getattr(__import__("builtins"), name)
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        if module == "_codecs" and name == "encode":
            import _codecs

            return _codecs.encode
        if module in _NUMPY_MULTIARRAY_MODULES and name in _ALLOWED_NUMPY_MULTIARRAY:
            return _resolve_numpy("multiarray", name)
        if module in _NUMPY_NUMERIC_MODULES and name in _ALLOWED_NUMPY_NUMERIC:
            return _resolve_numpy("numeric", name)
        if module == "numpy" and name in _ALLOWED_NUMPY_TOPLEVEL:
            import numpy

            return getattr(numpy, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            import numpy.dtypes

            cls = getattr(numpy.dtypes, name, None)
            if cls is not None:
                return cls
        raise UnsafePickleError(
            f"Refusing to load {self._source}: it references the global '{module}.{name}', which is "
            "not allowed in a weight file (only containers, numbers, strings and NumPy arrays are). "
            "If the file is trusted, convert it to a .pth state dict."
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"Refusing to load {self._source}: it uses persistent ids ({pid!r})")


def safe_load(file: IO[bytes], *, source: str | None = None, encoding: str = "latin1") -> Any:
    """Unpickle ``file`` with :class:`RestrictedUnpickler`.

    Args:
        file: a binary file object.
        source: a name for error messages (default: ``file.name`` when it has one).
        encoding: decoding of Python 2 strings.

    Raises:
        UnsafePickleError: the pickle needs a global outside the allow-list.
        pickle.UnpicklingError, EOFError: the data is not a valid pickle.
    """
    if source is None:
        source = str(getattr(file, "name", "<pickle>"))
    return RestrictedUnpickler(file, source=source, encoding=encoding).load()


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1") -> Any:
    """:func:`safe_load` for an in-memory pickle."""
    return safe_load(io.BytesIO(data), source=source, encoding=encoding)
