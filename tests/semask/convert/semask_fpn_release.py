"""A SeMask-FPN release checkpoint's entries (``tests/fixtures/semask_fpn_SwinT_keys.txt``) with
random values, and our config of that model (shared by ``tests/semask/convert`` and the
command-line test ``tests/tools/test_convert_semask_fpn.py``)."""
import math
import os

import torch

from mask_former.modeling.backbone.swin import relative_position_index
from tests.paths import CONFIGS, FIXTURES

CONFIG = os.path.join(CONFIGS, "ade20k-150", "semask_fpn", "semfpn_semask_swin_tiny_bs16_80k.yaml")
KEYS = os.path.join(FIXTURES, "semask_fpn_SwinT_keys.txt")


def released_state_dict():
    """The released SeMask-T FPN (ADE20K) entries with random values (the index buffers exact)."""
    g = torch.Generator().manual_seed(0)
    state = {}
    with open(KEYS) as f:
        for line in f:
            name, shape, dtype = line.split()
            shape = [int(s) for s in shape.strip("[]").split(",") if s]
            if name.endswith("relative_position_index"):
                window = math.isqrt(shape[0])
                state[name] = relative_position_index((window, window))
            elif dtype == "int64":
                state[name] = torch.randint(0, 1000, shape, generator=g)
            else:
                state[name] = torch.randn(shape, generator=g)
    return state
