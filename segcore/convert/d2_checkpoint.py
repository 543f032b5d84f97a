"""Writing converted weights: a Detectron2 ``.pkl`` (``{"model": {name: ndarray}, "__author__": ...,
"matching_heuristics": ...}``, as Detectron2's converters write it) or the same dict with tensors
in a ``.pth`` file, which :class:`segcore.checkpoint.Checkpointer` loads."""
from __future__ import annotations

import os
import pickle
from typing import Mapping

import torch

from segcore.checkpoint import atomic_write

__all__ = ["SUFFIXES", "d2_checkpoint_content", "write_d2_checkpoint"]

#: the file names a converter writes, and the form of their values
SUFFIXES = {".pkl": "numpy", ".pth": "torch"}


def d2_checkpoint_content(weights: Mapping[str, torch.Tensor], *, author: str, matching_heuristics: bool,
                          numpy: bool) -> dict:
    """The dict a converter writes.

    Args:
        weights: {name: tensor} (any device; detached, moved to the CPU and made contiguous).
        author: the ``__author__`` entry (where the weights come from).
        matching_heuristics: False when the names are exactly the model's (then
            :class:`~segcore.checkpoint.Checkpointer` matches nothing approximately), True when they
            are to be matched into a model (e.g. a backbone's names without ``backbone.``).
        numpy: NumPy arrays (a Detectron2 ``.pkl``) rather than tensors (a ``.pth``).

    Returns:
        ``{"model": {name: ndarray or tensor}, "__author__": author, "matching_heuristics": ...}``,
        in the order of ``weights``.

    Raises:
        ValueError: a value that is not a tensor (the entry is named).
    """
    model = {}
    for name, value in weights.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"'{name}' holds a {type(value).__name__}, expected a tensor")
        value = value.detach().cpu().contiguous()
        model[name] = value.numpy() if numpy else value
    return {"model": model, "__author__": author, "matching_heuristics": matching_heuristics}


def write_d2_checkpoint(weights: Mapping[str, torch.Tensor], path: str, *, author: str,
                        matching_heuristics: bool) -> dict:
    """Write ``weights`` to ``path`` (atomically: the file is complete or absent): a ``.pkl`` holds
    NumPy arrays (pickled), a ``.pth`` tensors (``torch.save``); see :func:`d2_checkpoint_content`.

    Returns:
        the written dict.

    Raises:
        ValueError: ``path`` ends neither with ``.pkl`` nor ``.pth`` (nothing is written), or a
            value is not a tensor.
    """
    form = SUFFIXES.get(os.path.splitext(path)[1].lower())
    if form is None:
        raise ValueError(f"output {path}: use a .pkl (Detectron2) or .pth file name")
    content = d2_checkpoint_content(weights, author=author, matching_heuristics=matching_heuristics,
                                    numpy=form == "numpy")
    if form == "numpy":
        atomic_write(path, lambda f: pickle.dump(content, f, protocol=pickle.HIGHEST_PROTOCOL))
    else:
        atomic_write(path, lambda f: torch.save(content, f))
    return content
