"""Helpers for the parity tests against the original implementations' measured outputs.

The fixtures in ``tests/fixtures/`` were copied from the reference measurements of the original
MaskFormer code (see ``tests/fixtures/README.md``); the weights are rebuilt from parameter names
with the "name-seeded rule" below, so no weight file is shipped.
"""
from __future__ import annotations

import math
import os
import zlib

import torch

from tests.paths import FIXTURES


def name_seeded_value(name: str, shape) -> torch.Tensor:
    """The value the name-seeded rule gives a floating-point state-dict entry ``name``.

    Rule: a torch.Generator seeded with crc32(name); running_var -> 0.5 + U[0,1);
    running_mean -> 0.1 N(0,1); 1-D "weight" -> 1 + 0.1 N(0,1); other 1-D -> 0.1 N(0,1);
    otherwise N(0,1) / sqrt(numel of tensor[0]). All draws in float32.
    """
    g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    shape = tuple(shape)
    if name.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if name.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1 and name.endswith("weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1:
        return 0.1 * torch.randn(shape, generator=g)
    fan = math.prod(shape[1:]) if len(shape) > 1 else 1
    return torch.randn(shape, generator=g) / math.sqrt(fan)


@torch.no_grad()
def fill_name_seeded(model: torch.nn.Module) -> None:
    """Overwrite every floating-point state-dict entry of ``model`` by the name-seeded rule."""
    sd = model.state_dict()
    for name, t in sd.items():
        if t.is_floating_point():
            t.copy_(name_seeded_value(name, t.shape).to(t.dtype))


def load_fixture(name: str) -> dict:
    return torch.load(os.path.join(FIXTURES, name), weights_only=True)


def reference_keys(name: str):
    """[(key, shape tuple)] of an original model's state dict, from ``fixtures/<name>_keys.txt``."""
    out = []
    with open(os.path.join(FIXTURES, f"{name}_keys.txt")) as f:
        for line in f:
            key, shape, _dtype = line.split()
            out.append((key, tuple(int(s) for s in shape.strip("[]").split(",") if s)))
    return out
