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
    from segcore.quickstart import generate_quickstart

    root = tmp_path_factory.mktemp("quickstart_datasets")
    generate_quickstart(str(root), num_train=6, num_val=3, size=80)
    return root


@pytest.fixture
def quickstart_panoptic_registered(quickstart_root):
    """Register the quickstart panoptic and instance datasets with metadata paths under
    ``quickstart_root`` for the test (their paths are bound at registration; the process registered
    them for ./datasets on import), and restore them afterwards."""
    from segcore.data import DatasetCatalog, MetadataCatalog
    from segcore.data.datasets import quickstart as qs

    names = [*qs.QUICKSTART_PANOPTIC_SPLITS, *qs.QUICKSTART_INSTANCE_SPLITS]

    def reregister(root):
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        qs.register_all_quickstart_panoptic(root)

    reregister(str(quickstart_root))
    yield
    reregister(None)


@pytest.fixture(scope="session")
def quickstart_video_root(tmp_path_factory):
    """The quickstart video set, small: 4 training and 2 validation videos of 4 frames, 64 pixels
    (``<root>/quickstart_ytvis``), shared by the tests (read-only)."""
    from segcore.quickstart.video_dataset import generate_quickstart_videos

    root = tmp_path_factory.mktemp("quickstart_video_datasets")
    generate_quickstart_videos(str(root), num_train=4, num_val=2, num_frames=4, size=64)
    return root


@pytest.fixture(scope="module")
def quickstart_ytvis_registered(quickstart_video_root):
    """``quickstart_ytvis_{train,val}`` registered with their paths (metadata too) under
    ``quickstart_video_root`` for the tests of a module, restored afterwards."""
    from segcore.data import DatasetCatalog, MetadataCatalog
    from segcore.data.datasets import quickstart as qs

    def reregister(root):
        for name in qs.QUICKSTART_YTVIS_SPLITS:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        qs.register_all_quickstart_ytvis(root)

    reregister(str(quickstart_video_root))
    yield quickstart_video_root
    reregister(None)
