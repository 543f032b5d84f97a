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


#: how far a checksum of the rebuilt weights may be from the reference, as a fraction of the sum of
#: absolute values: torch.randn's float32 Box-Muller transform rounds differently with the CPU's
#: vector instructions (AVX2 vs the baseline: measured up to 1e-7 of the absolute sum; identical
#: where the reference was measured), so the rebuilt weights are equal up to that rounding
CHECKSUM_TOLERANCE = 1e-6


#: relative tolerance of the sem_seg samples, beside the reference README's 1e-4 absolute: where
#: torch.randn rounds differently (above), the rebuilt weights differ from the reference's by up to
#: ~1e-6 relative, and through a deep network the scores (up to ~10) move by up to 2e-5 relative
#: (measured: SeMask Swin-T with ATEN_CPU_CAPABILITY=default, 1.3e-4 at a score of 6.6)
SAMPLE_RTOL = 5e-5


def assert_checksums_match(state_dict: dict, checksums: dict) -> None:
    """Assert each entry of ``checksums`` (name -> ``[sum, sum of abs, shape]``, the reference
    README's ``weights_checksum.json``) holds for ``state_dict`` within :data:`CHECKSUM_TOLERANCE`."""
    for key, (total, total_abs, shape) in checksums.items():
        assert list(state_dict[key].shape) == shape, key
        value = state_dict[key].double()
        bound = CHECKSUM_TOLERANCE * total_abs + 1e-12
        assert abs(value.sum().item() - total) <= bound, (key, value.sum().item(), total)
        assert abs(value.abs().sum().item() - total_abs) <= bound, (key, value.abs().sum().item(), total_abs)


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
