"""Saving and loading model checkpoints (Detectron2's ``DetectionCheckpointer`` on fvcore's ``Checkpointer``).

What this adds to fvcore's ``Checkpointer``:

* **atomic saves**: a checkpoint (and the ``last_checkpoint`` tag) is written to a temporary
  file in the same folder, flushed, ``fsync`` ed and moved into place with ``os.replace``, so a
  crash never leaves a partial file under a checkpoint name; the temporary files of a save that
  was killed are removed by the next run (:meth:`Checkpointer.remove_stale_temporary_files`);
* **finite weights only**: :meth:`Checkpointer.save` refuses (``FloatingPointError`` naming the
  tensors) a model with NaN or infinite weights, so ``last_checkpoint`` always names a usable one;
* **finite weights in**: :meth:`Checkpointer.load` refuses (:class:`~.errors.NonFiniteWeightsError`)
  a file with NaN or infinite weights, before changing the model;
* **complete models where it matters**: ``load(..., require_all=True)`` (evaluation, inference)
  raises :class:`~.errors.IncompleteWeightsError` unless every weight of the model was loaded;
* **safe loads**: ``.pth`` files are read with ``torch.load(weights_only=True)``; Detectron2
  ``.pkl`` files with a restricted unpickler (:mod:`.safe_pickle`). Readers are chosen by file
  suffix (:attr:`Checkpointer.file_readers`), so more formats can be added. Any file that
  cannot be read (not a checkpoint, truncated, corrupt, not a dict of weights) raises
  :class:`~.errors.CheckpointReadError` naming the file, the format expected and the reader's
  reason; one that refers to code or arbitrary objects :class:`~.errors.UnsafeCheckpointError`;
* **name matching** for pretrained weights (Detectron2's heuristics, :mod:`.c2_model_loading`):
  a file with ``"matching_heuristics": True`` (Detectron2 ``.pkl`` files from converters, every
  ``.pth`` file, as in Detectron2), or a Caffe2 ``.pkl`` (no ``__author__``), is loaded by the
  longest dot-aligned suffix of each model key, so a backbone-only file loads into a full model;
* a **report** of what was loaded and of the missing, unexpected and shape-mismatched keys,
  grouped by module (logged; kept in :attr:`Checkpointer.incompatible_keys`; an error only with
  ``strict=True``);
* paths through the project's ``PathManager`` (local files, ``http(s)://``, ``detectron2://``).
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np

import torch
from fvcore.common.checkpoint import Checkpointer as _FvCheckpointer
from fvcore.common.checkpoint import PeriodicCheckpointer
from fvcore.common.checkpoint import _filter_reused_missing_keys, _IncompatibleKeys
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from segcore.utils import comm
from segcore.utils.file_io import PathManager

from .atomic import atomic_write
from .c2_model_loading import align_and_update_state_dicts
from .errors import (CheckpointReadError, IncompleteWeightsError, NonFiniteWeightsError, UnsafeCheckpointError,
                     summarize_names)
from .report import format_incompatible_keys, non_finite_entries
from .safe_pickle import UnsafePickleError, safe_load

__all__ = ["Checkpointer", "DetectionCheckpointer", "PeriodicCheckpointer"]

LAST_CHECKPOINT_FILE = "last_checkpoint"
# The temporary files atomic_write makes for Checkpointer.save: ".<name>.pth.<8 random chars>.tmp"
# and ".last_checkpoint.<8 random chars>.tmp" (tempfile.mkstemp's random part).
_STALE_TEMP_FILE = re.compile(r"\.(?:.+\.pth|" + re.escape(LAST_CHECKPOINT_FILE) + r")\.[a-z0-9_]{8}\.tmp")
#: what a file of each suffix must be (for error messages); other suffixes are PyTorch files
EXPECTED_FORMATS = {
    ".pkl": "a Detectron2 .pkl weight file: a pickled dict {'model': {name: ndarray}, '__author__': ...} "
            "(or Caffe2's {'blobs': {name: ndarray}} / {name: ndarray})",
}
_EXPECTED_TORCH_FORMAT = ("a PyTorch .pth checkpoint: torch.save of a dict {'model': state_dict, ...} or of a bare "
                          "state dict {name: tensor}")
# What torch.load(weights_only=True) says when its restricted unpickler fails, whether the file
# refers to an object it refuses (unsafe) or its bytes are not a valid pickle (corrupt).
_WEIGHTS_ONLY_FAILURE = "Weights only load failed"
# The refusals of torch's weights-only unpickler (torch/_weights_only_unpickler.py): the file asks
# for a global, a call or an object that a weight file may not hold. Every other failure of that
# unpickler ("Unsupported operand 221", "String is too long", ...) means the bytes are corrupt.
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*) (?:was not an allowed global|whose module)")
_REFUSED_OBJECT = re.compile(r"reduce for unrecognized function|Can only create new object|Can only build Tensor")


def _weights_only_detail(message: str) -> str:
    """The first line of the weights-only unpickler's own words inside torch.load's long message."""
    _, _, tail = message.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (tail or message).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else message.strip()


def _weights_only_failure(filename: str, expected: str, message: str) -> CheckpointReadError:
    """The error for a torch.load(weights_only=True) failure: :class:`UnsafeCheckpointError` when
    the file refers to something a weight file may not hold, else :class:`CheckpointReadError`
    (corrupt bytes), both with the unpickler's reason."""
    detail = _weights_only_detail(message)
    if _REFUSED_GLOBAL.search(detail) or _REFUSED_OBJECT.search(detail):
        detail = detail.split(" Please use")[0].rstrip(".")
        return UnsafeCheckpointError(
            filename, expected,
            f"torch.load(weights_only=True) refused it: {detail}; a weight file may hold tensors and plain "
            "containers only (if the file is trusted, load it with torch.load and save its state dict)")
    return CheckpointReadError(filename, expected,
                               f"it is truncated, corrupt or not a weight file (its pickle data is invalid: {detail})")


# Buffers that old checkpoints may lack and that the model's config initializes anyway.
_IGNORED_MISSING_BUFFERS = ("pixel_mean", "pixel_std")
# Top-level entries of a weight file that describe it and are not handed back by ``load``.
_METADATA_KEYS = ("__author__", "matching_heuristics")


class Checkpointer(_FvCheckpointer):
    """Save / load a model and other checkpointables (optimizer, scheduler, trainer, ...).

    As Detectron2's ``DetectionCheckpointer``; see the module docstring for what differs from
    fvcore. A saved file ``<save_dir>/<name>.pth`` holds ``{"model": state_dict,
    <checkpointable>: state_dict, **extra}``; ``<save_dir>/last_checkpoint`` names the latest.

    Args:
        model: the model (a ``DistributedDataParallel`` / ``DataParallel`` wrapper is unwrapped).
        save_dir: folder of saved checkpoints ("" disables saving).
        save_to_disk: whether :meth:`save` writes; default: only on the main process.
        allow_non_finite: let :meth:`load` load weight files that hold NaN or infinite values
            (for debugging; ``MODEL.ALLOW_NON_FINITE_WEIGHTS``); they are refused by default.
        checkpointables: objects with ``state_dict()`` / ``load_state_dict()``, saved and
            restored under their keyword name.

    Attributes:
        incompatible_keys: after :meth:`load`, ``(missing_keys, unexpected_keys,
            incorrect_shapes)`` of the model weights, or ``None`` before any load. With name
            matching, ``incorrect_shapes`` names model keys and ``unexpected_keys`` the
            checkpoint keys (original names) that were loaded nowhere.
        matched_keys: after a load with name matching, model key -> checkpoint key of every
            loaded weight (``{}`` otherwise).
        file_readers: file suffix -> name of the method that reads such a file into
            ``{"model": state_dict, ...}``; other suffixes use ``_load_torch_file``.
    """

    file_readers: dict[str, str] = {".pkl": "_load_pkl_file"}

    def __init__(self, model: nn.Module, save_dir: str = "", *, save_to_disk: bool | None = None,
                 allow_non_finite: bool = False, **checkpointables: Any):
        self.allow_non_finite = allow_non_finite
        if save_to_disk is None:
            save_to_disk = comm.is_main_process()
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.logger = logging.getLogger(__name__)
        self.path_manager = PathManager
        self.incompatible_keys: _IncompatibleKeys | None = None
        self.matched_keys: dict[str, str] = {}
        self._mismatch_sources: dict[str, str] = {}
        self._stale_files_checked = False

    # ------------------------------------------------------------------ saving
    def save(self, name: str, **kwargs: Any) -> None:
        """Write ``<save_dir>/<name>.pth`` atomically and tag it in ``last_checkpoint``.

        The first save of this checkpointer first removes the temporary files of an earlier
        save that was killed (:meth:`remove_stale_temporary_files`).

        Args:
            name: file name without the ``.pth`` suffix (no folder part).
            kwargs: extra picklable data saved at the top level (e.g. ``iteration=N``).

        Raises:
            ValueError: ``name`` contains a path separator.
            FloatingPointError: a weight or buffer of the model is NaN or infinite (the message
                names them); nothing is written and ``last_checkpoint`` keeps naming the last
                good checkpoint.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        if os.path.basename(save_file) != basename:
            raise ValueError(f"Checkpoint name must be a plain file name, got {name!r}")
        model_state = self.model.state_dict()
        self._check_finite(model_state, save_file)
        if not self._stale_files_checked:
            self.remove_stale_temporary_files()
        data: dict[str, Any] = {"model": model_state}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_write(save_file, lambda f: torch.save(data, f), self.path_manager)
        self.tag_last_checkpoint(basename)

    def _check_finite(self, model_state: dict[str, Any], save_file: str) -> None:
        """Raise FloatingPointError naming the floating-point tensors of ``model_state`` that hold
        NaN or infinite values."""
        bad, num_float = non_finite_entries(model_state)
        if not bad:
            return
        last = self.get_checkpoint_file() if self.has_checkpoint() else ""
        raise FloatingPointError(
            f"Refusing to save {save_file}: {len(bad)} of the model's {num_float} floating-point tensors are "
            f"not finite (training diverged): {summarize_names(bad)}. Nothing was written; last_checkpoint "
            + (f"still names {last}." if last else "names no checkpoint.")
        )

    def remove_stale_temporary_files(self) -> list[str]:
        """Remove, from ``save_dir``, the temporary files that a save killed half-way left behind
        (``.<name>.pth.XXXXXXXX.tmp`` and ``.last_checkpoint.XXXXXXXX.tmp``, the names
        :func:`atomic_write` gives them; nothing else). Logged as a warning.

        Only a checkpointer that saves (main process, local ``save_dir``) removes anything;
        :class:`~segcore.engine.DefaultTrainer` calls this when a run starts.

        Returns:
            list[str]: the removed paths.
        """
        self._stale_files_checked = True
        if not self.save_dir or not self.save_to_disk or "://" in self.save_dir or not os.path.isdir(self.save_dir):
            return []
        removed = []
        for name in sorted(os.listdir(self.save_dir)):
            if not _STALE_TEMP_FILE.fullmatch(name):
                continue
            path = os.path.join(self.save_dir, name)
            try:
                os.unlink(path)
            except FileNotFoundError:  # removed meanwhile
                continue
            removed.append(path)
        if removed:
            self.logger.warning(
                f"Removed {len(removed)} half-written temporary file(s) left by an interrupted checkpoint save: "
                + ", ".join(removed)
            )
        return removed

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Atomically write ``last_filename_basename`` into ``<save_dir>/last_checkpoint``."""
        save_file = os.path.join(self.save_dir, LAST_CHECKPOINT_FILE)
        atomic_write(save_file, lambda f: f.write(last_filename_basename.encode("utf-8")), self.path_manager)

    # ----------------------------------------------------------------- loading
    def load(self, path: str, checkpointables: list[str] | None = None, *, strict: bool = False,
             require_all: bool = False) -> dict[str, Any]:
        """Load model weights (and checkpointables) from ``path``.

        Weights whose shape differs from the model's are skipped; every missing, unexpected
        and skipped key is logged and kept in :attr:`incompatible_keys`. A file holding NaN or
        infinite weights is refused before anything is loaded (unless the checkpointer was made
        with ``allow_non_finite=True``).

        Args:
            path: local path, ``http(s)://`` URL (downloaded to the iopath cache) or
                ``detectron2://`` path of a ``.pth`` (``{"model": state_dict, ...}`` or a bare
                state dict) or Detectron2 / Caffe2 ``.pkl`` file; "" loads nothing.
            checkpointables: names of the checkpointables to restore (default: all that the
                file has; ``[]``: the model only).
            strict: raise if any key is missing, unexpected or of another shape (the matching
                weights are loaded first, as ``torch.nn.Module.load_state_dict(strict=True)``).
            require_all: raise :class:`IncompleteWeightsError` unless every weight of the model
                was loaded (none missing or of another shape; unused entries of the file are
                only reported); with ``path`` "" this always raises. For evaluation and
                inference, where a partly loaded model gives meaningless results.

        Returns:
            dict: the file's data not consumed (e.g. ``{"iteration": N}``).

        Raises:
            FileNotFoundError: ``path`` does not exist.
            OSError: a URL could not be downloaded (the message gives the URL and the local
                cache path to put the file at), or the file system refused the read.
            CheckpointReadError: the file cannot be read as a checkpoint of the format its
                suffix implies (not a checkpoint, truncated, corrupt, not a dict of weights);
                the message names the file, the format expected and the reader's reason.
            UnsafeCheckpointError: the file holds objects that a weight file may not hold
                (a :class:`CheckpointReadError` and a ``pickle.UnpicklingError``).
            NonFiniteWeightsError: the file holds NaN or infinite weights (the message names
                them); the model is left unchanged.
            IncompleteWeightsError: ``require_all`` and some weights of the model were not
                loaded (the message lists them).
            AmbiguousMatchError: with name matching, one checkpoint key matches two model keys.
            RuntimeError: ``strict`` and the keys differ (the message lists them).
            KeyError: a requested checkpointable was not registered with this checkpointer.
        """
        if not path:
            if require_all:
                raise IncompleteWeightsError("", 0, len(self.model.state_dict()), "")
            self.logger.info("No checkpoint found. Initializing model from scratch")
            return {}
        self.logger.info(f"[Checkpointer] Loading from {path} ...")
        local_path = self._get_local_path(path)
        checkpoint = self._load_file(local_path)
        if not self.allow_non_finite:
            bad, num_float = non_finite_entries(checkpoint["model"])
            if bad:
                raise NonFiniteWeightsError(path, bad, num_float)
        try:
            incompatible = self._load_model(checkpoint)
        except ValueError as e:
            raise type(e)(f"Cannot load the weights in {path}: {e}") from e
        for key in _METADATA_KEYS:
            checkpoint.pop(key, None)
        self.incompatible_keys = incompatible
        if incompatible is not None:
            self._log_incompatible_keys(incompatible)
            if strict and (incompatible.missing_keys or incompatible.unexpected_keys or incompatible.incorrect_shapes):
                raise RuntimeError(
                    f"The weights in {path} do not match the model {type(self.model).__name__} (strict=True):\n"
                    + format_incompatible_keys(incompatible, self._mismatch_sources)
                )
            if require_all and (incompatible.missing_keys or incompatible.incorrect_shapes):
                num_model = len(self.model.state_dict())
                num_loaded = num_model - len(incompatible.missing_keys) - len(incompatible.incorrect_shapes)
                only_missing = _IncompatibleKeys(incompatible.missing_keys, [], incompatible.incorrect_shapes)
                raise IncompleteWeightsError(path, num_loaded, num_model,
                                             format_incompatible_keys(only_missing, self._mismatch_sources))

        names = list(self.checkpointables) if checkpointables is None else list(checkpointables)
        for key in names:
            if key not in self.checkpointables:
                raise KeyError(
                    f"'{key}' is not a checkpointable of this checkpointer (registered: {sorted(self.checkpointables)})"
                )
            if key in checkpoint:
                self.logger.info(f"Loading {key} from {path} ...")
                self.checkpointables[key].load_state_dict(checkpoint.pop(key))
        return checkpoint

    def resume_or_load(self, path: str, resume: bool = True, *, require_all: bool = False) -> dict[str, Any]:
        """Resume from ``<save_dir>/last_checkpoint`` if ``resume`` and it exists (model and all
        checkpointables), else load only the model weights of ``path`` ("" loads nothing).

        Args:
            require_all: as in :meth:`load`.

        Returns:
            same as :meth:`load`.
        """
        if resume and self.has_checkpoint():
            return self.load(self.get_checkpoint_file(), require_all=require_all)
        return self.load(path, checkpointables=[], require_all=require_all)

    def _get_local_path(self, path: str) -> str:
        if os.path.isfile(path):
            return path
        if "://" in path:
            local = self.path_manager.get_local_path(path)
            if os.path.isfile(local):
                return local
        raise FileNotFoundError(f"Checkpoint file not found: {path}")

    def _load_file(self, filename: str) -> dict[str, Any]:
        """Read a local checkpoint file with the reader registered for its suffix and check
        that it holds ``{"model": {name: tensor or ndarray}, ...}``.

        Returns:
            dict: ``{"model": {name: tensor or ndarray}, ...}``; with
            ``"matching_heuristics": True`` when names must be matched approximately.

        Raises:
            CheckpointReadError / UnsafeCheckpointError: see :meth:`load`.
            OSError: the file system refused the read (the error names the file).
        """
        suffix = os.path.splitext(filename)[1].lower()
        reader = getattr(self, self.file_readers.get(suffix, "_load_torch_file"))
        expected = EXPECTED_FORMATS.get(suffix, _EXPECTED_TORCH_FORMAT)
        try:
            checkpoint = reader(filename)
        except (CheckpointReadError, OSError):
            raise
        except UnsafePickleError as e:
            raise UnsafeCheckpointError(filename, expected, str(e).rstrip(".")) from e
        # A corrupt or truncated file can make torch.load or the unpickler raise almost any
        # exception type (KeyError for an unknown opcode, EOFError, RuntimeError from the zip
        # reader, ...): all of them mean the same thing here.
        except Exception as e:
            if _WEIGHTS_ONLY_FAILURE in str(e):
                raise _weights_only_failure(filename, expected, str(e)) from e
            raise CheckpointReadError(
                filename, expected, f"it is truncated, corrupt or not a weight file ({type(e).__name__}: {e})"
            ) from e
        self._check_layout(checkpoint, filename, expected)
        return checkpoint

    @staticmethod
    def _check_layout(checkpoint: Any, filename: str, expected: str) -> None:
        """Raise CheckpointReadError unless ``checkpoint`` is ``{"model": {str: tensor or ndarray}, ...}``."""
        if not isinstance(checkpoint, dict):
            raise CheckpointReadError(filename, expected, f"it holds a {type(checkpoint).__name__}, not a dict")
        weights = checkpoint.get("model")
        if not isinstance(weights, dict):
            raise CheckpointReadError(
                filename, expected, f"its 'model' entry is a {type(weights).__name__}, not a dict of weights"
            )
        bad = [(k, v) for k, v in weights.items()
               if not isinstance(k, str) or not isinstance(v, (torch.Tensor, np.ndarray))]
        if bad:
            key, value = bad[0]
            raise CheckpointReadError(
                filename, expected,
                f"{len(bad)} of its {len(weights)} weights are not tensors or arrays with string names "
                f"(e.g. {key!r}: {type(value).__name__})",
            )

    def _load_torch_file(self, filename: str) -> dict[str, Any]:
        """A ``torch.save`` file, read with ``weights_only=True``; a bare state dict is wrapped.

        As in Detectron2, names are matched approximately (``matching_heuristics``) unless the
        file sets ``"matching_heuristics": False``; exact names always win the matching.

        Raises:
            CheckpointReadError: the file holds something other than a dict.
            whatever ``torch.load`` raises (:meth:`_load_file` turns it into a CheckpointReadError).
        """
        loaded = torch.load(filename, map_location=torch.device("cpu"), weights_only=True)
        if not isinstance(loaded, dict):
            raise CheckpointReadError(filename, _EXPECTED_TORCH_FORMAT, f"it holds a {type(loaded).__name__}, not a dict")
        if "model" not in loaded:
            loaded = {"model": loaded}
        loaded.setdefault("matching_heuristics", True)
        return loaded

    def _load_pkl_file(self, filename: str) -> dict[str, Any]:
        """A Detectron2 ``.pkl``: ``{"model": {name: ndarray}, "__author__": ...}`` (names
        matched only with ``"matching_heuristics": True``, as in Detectron2), ``{"model": ...}``
        without an author (names matched), or a Caffe2-style ``{"blobs": {...}}`` / flat
        ``{name: ndarray}`` (Caffe2 names converted, then matched)."""
        with self.path_manager.open(filename, "rb") as f:
            data = safe_load(f, source=filename)
        if not isinstance(data, dict):
            raise CheckpointReadError(filename, EXPECTED_FORMATS[".pkl"], f"it holds a {type(data).__name__}, not a dict")
        if "model" in data and "__author__" in data:
            self.logger.info(f"Reading a file from '{data['__author__']}'")
            return data
        if isinstance(data.get("model"), dict):  # Detectron2 layout without an author: match names
            data = dict(data)
            data.setdefault("matching_heuristics", True)
            return data
        if "blobs" in data:  # Caffe2 detection models keep the weights under "blobs"
            data = data["blobs"]
        data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
        return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}

    def _load_model(self, checkpoint: dict[str, Any]) -> _IncompatibleKeys:
        """Copy ``checkpoint["model"]`` into the model (consumes the key); skips shape mismatches.

        With ``checkpoint["matching_heuristics"]``, checkpoint keys are first renamed to model
        keys by :func:`~.c2_model_loading.align_and_update_state_dicts` (with the Caffe2 name
        conversion when ``__author__`` is "Caffe2").

        Returns:
            ``(missing_keys, unexpected_keys, incorrect_shapes)``; a shape-mismatched key is
            only in ``incorrect_shapes``; ``pixel_mean`` / ``pixel_std`` of the model are not
            reported missing (the config sets them).

        Raises:
            AmbiguousMatchError: one checkpoint key matches two model keys.
            ValueError: a value is neither a tensor nor a NumPy array.
        """
        self.matched_keys = {}
        self._mismatch_sources = {}
        if checkpoint.get("matching_heuristics", False):
            state = checkpoint["model"]
            self._convert_ndarray_to_tensor(state)
            consume_prefix_in_state_dict_if_present(state, "module.")
            match = align_and_update_state_dicts(
                self.model.state_dict(), state, c2_conversion=checkpoint.get("__author__") == "Caffe2"
            )
            self.matched_keys = dict(match.matched)
            self._mismatch_sources = {m: c for m, c, _, _ in match.incorrect_shapes}
            self._log_matches(match.matched, len(state))
            checkpoint["model"] = match.state_dict
            incompatible = super()._load_model(checkpoint)
            incorrect_shapes = [(m, shape_c, shape_m) for m, _, shape_c, shape_m in match.incorrect_shapes]
            unexpected = list(match.unused)
        else:
            incompatible = super()._load_model(checkpoint)
            incorrect_shapes = list(incompatible.incorrect_shapes)
            unexpected = list(incompatible.unexpected_keys)
        top_level_buffers = dict(self.model.named_buffers(recurse=False))
        mismatched = {k for k, _, _ in incorrect_shapes}  # reported as such, not as missing
        missing = [
            k
            for k in incompatible.missing_keys
            if k not in mismatched and not (k in _IGNORED_MISSING_BUFFERS and k in top_level_buffers)
        ]
        kept = set(_filter_reused_missing_keys(self.model, missing))
        missing = [k for k in missing if k in kept]
        return _IncompatibleKeys(missing_keys=missing, unexpected_keys=unexpected, incorrect_shapes=incorrect_shapes)

    def _log_matches(self, matched: dict[str, str], num_checkpoint_keys: int) -> None:
        """Log which model weights were loaded from which checkpoint keys, one line per module."""
        num_model_keys = len(self.model.state_dict())
        self.logger.info(
            f"Name matching loaded {len(matched)} of the model's {num_model_keys} weights from "
            f"{num_checkpoint_keys} checkpoint weights"
        )
        renamed = {m: c for m, c in matched.items() if m != c}
        if not renamed:
            return
        groups: dict[tuple[str, str], list[str]] = {}
        for key_model, key_ckpt in sorted(renamed.items()):
            prefix_model, _, name = key_model.rpartition(".")
            if key_ckpt == name or key_ckpt.endswith("." + name):
                prefix_ckpt = key_ckpt[: len(key_ckpt) - len(name)].rstrip(".")
            else:  # renamed by the Caffe2 conversion: show the whole name
                prefix_ckpt = key_ckpt
            groups.setdefault((prefix_model, prefix_ckpt), []).append(name)
        lines = [
            f"  {pm}.{{{', '.join(names)}}} <- {pc or '(top level)'}" for (pm, pc), names in groups.items()
        ]
        self.logger.info("Weights loaded under another name (model <- checkpoint):\n" + "\n".join(lines))

    def _log_incompatible_keys(self, incompatible: _IncompatibleKeys) -> None:
        report = format_incompatible_keys(incompatible, self._mismatch_sources)
        if report:
            self.logger.warning("Checkpoint and model differ:\n" + report)


# Detectron2's name for the same class.
DetectionCheckpointer = Checkpointer
