"""``torch.compile`` of a model's network, its pre- and post-processing left eager."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["COMPILED_SUBMODULES", "compile_model"]

#: the submodules :func:`compile_model` compiles (the tensor programs of a Detectron2-style
#: meta-architecture; its pre- and post-processing stay eager)
COMPILED_SUBMODULES = ("backbone", "sem_seg_head")


def compile_model(model: nn.Module, *, inplace: bool = True, **compile_kwargs: Any) -> nn.Module:
    """``torch.compile`` a model's ``backbone`` and ``sem_seg_head`` (the whole model if it has neither).

    Only the network is compiled: the meta-architecture's pre- and post-processing (batching,
    padding, per-image inference with data-dependent Python) stay eager, where compiling them
    would only add graph breaks. Compilation happens at the first call (and again for a new input
    size); the state-dict names are unchanged.

    Args:
        model: a model (``DistributedDataParallel`` is unwrapped when not in place).
        inplace: compile the submodules in place (``nn.Module.compile``: the model itself runs
            compiled from now on, in training and in eval mode); otherwise return a shallow copy
            of the model whose submodules are compiled wrappers of the same modules (same
            parameters; ``model`` itself stays eager).
        compile_kwargs: passed to ``torch.compile`` (e.g. ``mode``, ``dynamic``).

    Returns:
        ``model`` (in place) or the compiled copy.
    """
    if not inplace and isinstance(model, DistributedDataParallel):
        model = model.module
    names = [n for n in COMPILED_SUBMODULES if isinstance(getattr(model, n, None), nn.Module)]
    if inplace:
        for module in [getattr(model, n) for n in names] or [model]:
            module.compile(**compile_kwargs)
        return model
    if not names:
        return torch.compile(model, **compile_kwargs)
    twin = copy.copy(model)
    twin.__dict__["_modules"] = dict(model._modules)  # its own table; the modules are shared
    for n in names:
        twin._modules[n] = torch.compile(model._modules[n], **compile_kwargs)
    return twin
