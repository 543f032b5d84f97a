"""Shared pytest setup: deterministic, small-thread CPU runs."""
import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def mf_cfg():
    """A config with the MaskFormer keys added (function scope: tests may modify it)."""
    from mask_former import add_mask_former_config
    from segcore.config import get_cfg

    cfg = get_cfg()
    add_mask_former_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    return cfg
