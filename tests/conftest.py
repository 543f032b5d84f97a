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


@pytest.fixture(scope="session")
def quickstart_root(tmp_path_factory):
    """A small generated quickstart dataset (ADE20K, COCO panoptic and instance layouts): 6 training
    and 3 validation images of 80 pixels, shared by the end-to-end tests (read-only)."""
    from segcore.data.quickstart import generate_quickstart

    root = tmp_path_factory.mktemp("quickstart_datasets")
    generate_quickstart(str(root), num_train=6, num_val=3, size=80)
    return root
