"""Samplers, dataset wrappers and the training / test loaders."""
import itertools
import os
import random

import numpy as np
import pytest
import torch
from PIL import Image

from segcore.config import get_cfg
from segcore.data import (
    AspectRatioGroupedDataset,
    DatasetCatalog,
    DatasetFromList,
    DatasetMapper,
    MapDataset,
    build_detection_test_loader,
    build_detection_train_loader,
    samplers,
)
from segcore.data.datasets import register_sem_seg_dataset
from segcore.data.samplers import InferenceSampler, TrainingSampler


def _fake_rank(monkeypatch, rank, world_size):
    monkeypatch.setattr(samplers, "get_rank_and_world_size", lambda: (rank, world_size))


def test_training_sampler_shards_are_disjoint_and_cover(monkeypatch):
    size, n = 10, 10
    shards = []
    for rank in range(2):
        _fake_rank(monkeypatch, rank, 2)
        shards.append(list(itertools.islice(iter(TrainingSampler(size, seed=123)), n)))
    # within one pass of the shared stream, the two ranks see disjoint indices covering everything
    first_pass_0, first_pass_1 = shards[0][: size // 2], shards[1][: size // 2]
    assert not set(first_pass_0) & set(first_pass_1)
    assert sorted(first_pass_0 + first_pass_1) == list(range(size))
    # and they interleave the same stream a single process would see
    _fake_rank(monkeypatch, 0, 1)
    stream = list(itertools.islice(iter(TrainingSampler(size, seed=123)), 2 * n))
    assert stream[0::2] == shards[0] and stream[1::2] == shards[1]


def test_training_sampler_determinism_and_infinite():
    a = list(itertools.islice(iter(TrainingSampler(7, seed=5)), 50))
    b = list(itertools.islice(iter(TrainingSampler(7, seed=5)), 50))
    c = list(itertools.islice(iter(TrainingSampler(7, seed=6)), 50))
    assert a == b and a != c
    assert all(sorted(a[i : i + 7]) == list(range(7)) for i in range(0, 49 - 7, 7))  # each pass is a permutation
    np.random.seed(11)
    d = list(itertools.islice(iter(TrainingSampler(7)), 20))
    np.random.seed(11)
    assert list(itertools.islice(iter(TrainingSampler(7)), 20)) == d  # seed drawn from numpy
    assert list(itertools.islice(iter(TrainingSampler(3, shuffle=False, seed=0)), 7)) == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="empty"):
        TrainingSampler(0)


def test_inference_sampler_contiguous_shards(monkeypatch):
    parts = []
    for rank in range(3):
        _fake_rank(monkeypatch, rank, 3)
        parts.append(list(InferenceSampler(10)))
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_map_dataset_retries_when_mapper_returns_none():
    ds = MapDataset(DatasetFromList(list(range(5))), lambda x: None if x == 2 else x * 10)
    assert ds[2] in {0, 10, 30, 40}
    assert ds[4] == 40
    never = MapDataset(DatasetFromList([1, 2]), lambda x: None)
    with pytest.raises(RuntimeError, match="None for every element"):
        never[0]


def test_map_dataset_replacement_depends_only_on_the_random_state():
    """The replacement of a rejected element is drawn from the global ``random`` state (which the
    training loader seeds per image position), not from the dataset's history: so a resumed run,
    with the same seed at the same position, gets the same replacement."""
    import random

    ds = MapDataset(DatasetFromList(list(range(50))), lambda x: None if x % 3 == 0 else x)
    random.seed(7)
    first = [ds[0] for _ in range(5)]
    ds_fresh = MapDataset(DatasetFromList(list(range(50))), lambda x: None if x % 3 == 0 else x)
    random.seed(7)
    assert [ds_fresh[0] for _ in range(5)] == first
    assert all(x % 3 for x in first) and len(set(first)) > 1


def test_dataset_from_list_serialized_returns_copies():
    lst = [{"a": [1]}, {"b": 2}]
    ds = DatasetFromList(lst)
    item = ds[0]
    item["a"].append(5)
    assert ds[0] == {"a": [1]} and len(ds) == 2


def test_aspect_ratio_grouping():
    items = [{"width": w, "height": h, "i": i} for i, (w, h) in enumerate([(4, 2), (2, 4), (2, 4), (4, 2), (5, 1)])]
    batches = list(AspectRatioGroupedDataset(items, 2))
    assert [[d["i"] for d in b] for b in batches] == [[1, 2], [0, 3]]
    with pytest.raises(KeyError, match="width"):
        list(AspectRatioGroupedDataset([{"file_name": "x"}], 1))


def _make_dataset(root, n=6):
    img_dir, gt_dir = os.path.join(root, "img"), os.path.join(root, "gt")
    os.makedirs(img_dir)
    os.makedirs(gt_dir)
    rng = np.random.RandomState(0)
    for i in range(n):
        h, w = (12, 16) if i % 2 == 0 else (16, 12)  # landscape and portrait
        Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8)).save(os.path.join(img_dir, f"{i}.png"))
        Image.fromarray(np.full((h, w), i % 3, np.uint8)).save(os.path.join(gt_dir, f"{i}.png"))
    return img_dir, gt_dir


@pytest.fixture
def tiny_dataset(tmp_path, request):
    name = "_test_loader_" + request.node.name.replace("[", "_").replace("]", "")
    img_dir, gt_dir = _make_dataset(str(tmp_path))
    register_sem_seg_dataset(name, img_dir, gt_dir, stuff_classes=["a", "b", "c"], image_ext="png")
    yield name
    from segcore.data import MetadataCatalog

    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def _loader_cfg(name, workers, grouping):
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (name,)
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = workers
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = grouping
    cfg.INPUT.MIN_SIZE_TRAIN = (8,)
    cfg.INPUT.MAX_SIZE_TRAIN = 100
    cfg.INPUT.FORMAT = "RGB"
    return cfg


@pytest.mark.parametrize("workers,grouping", [(0, True), (0, False), (2, True)])
def test_train_loader_batches(tiny_dataset, workers, grouping):
    cfg = _loader_cfg(tiny_dataset, workers, grouping)
    torch.manual_seed(0)
    np.random.seed(0)
    loader = build_detection_train_loader(cfg)
    batches = list(itertools.islice(iter(loader), 4))  # more than one pass: the loader is infinite
    for batch in batches:
        assert isinstance(batch, list) and len(batch) == 2
        for d in batch:
            assert d["image"].dtype == torch.uint8 and d["image"].shape[0] == 3
            assert min(d["image"].shape[1:]) == 8  # resized shorter edge
            assert d["sem_seg"].shape == d["image"].shape[1:] and d["sem_seg"].dtype == torch.int64
        if grouping:
            assert len({d["width"] > d["height"] for d in batch}) == 1


def test_train_loader_batch_size_must_divide_world_size(tiny_dataset, monkeypatch):
    cfg = _loader_cfg(tiny_dataset, 0, False)
    cfg.SOLVER.IMS_PER_BATCH = 3
    monkeypatch.setattr("segcore.data.build.get_rank_and_world_size", lambda: (0, 2))
    with pytest.raises(ValueError, match="IMS_PER_BATCH = 3"):
        build_detection_train_loader(cfg, dataset=[{"file_name": "x"}], sampler=TrainingSampler(1, seed=0))


def test_train_loader_explicit_arguments_and_empty_dataset():
    loader = build_detection_train_loader(
        [{"i": i, "width": 1, "height": 1} for i in range(3)], mapper=lambda d: d["i"], total_batch_size=2,
        aspect_ratio_grouping=False,
    )
    batch = next(iter(loader))
    assert len(batch) == 2 and all(0 <= x < 3 for x in batch)
    with pytest.raises(ValueError, match="empty"):
        build_detection_train_loader([], mapper=None, total_batch_size=2)


def test_test_loader_visits_each_image_once(tiny_dataset):
    cfg = _loader_cfg(tiny_dataset, 0, False)
    cfg.INPUT.MIN_SIZE_TEST = 0  # no resize
    loader = build_detection_test_loader(cfg, tiny_dataset)
    seen = [b[0]["file_name"] for b in loader]
    assert [os.path.basename(f) for f in seen] == [f"{i}.png" for i in range(6)]
    first = next(iter(loader))[0]
    assert first["height"] == 12 and first["width"] == 16 and first["image"].shape == (3, 12, 16)
    assert torch.equal(first["sem_seg"], torch.zeros(12, 16, dtype=torch.int64))


def test_dataset_mapper_rejects_annotation_of_wrong_size(tmp_path):
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "s.png")
    mapper = DatasetMapper(is_train=False, augmentations=[], image_format="BGR")
    with pytest.raises(ValueError, match="s.png"):
        mapper({"file_name": str(tmp_path / "i.png"), "sem_seg_file_name": str(tmp_path / "s.png")})


def _random_draws(d):
    """A mapper whose output is what it draws from Python's, NumPy's and torch's generators."""
    return {"i": d["i"], "width": d["width"], "height": d["height"],
            "draws": (random.random(), float(np.random.rand()), float(torch.rand(1)))}


def _items(n=5):
    # landscape and portrait elements, so aspect-ratio grouping keeps some waiting in buckets
    return [{"i": i, "width": 4 if i % 3 else 2, "height": 2 if i % 3 else 4} for i in range(n)]


def _loader(workers=0, grouping=False, seed=7, sampler_seed=3, batch=2):
    return build_detection_train_loader(
        _items(), mapper=_random_draws, sampler=TrainingSampler(5, seed=sampler_seed), total_batch_size=batch,
        aspect_ratio_grouping=grouping, num_workers=workers, seed=seed,
    )


def _batches(loader, n):
    return [[(d["i"], d["draws"]) for d in b] for b in itertools.islice(iter(loader), n)]


@pytest.mark.parametrize("grouping", [False, True])
def test_train_loader_randomness_depends_on_the_position_only(grouping):
    """Each element's random draws are seeded from (seed, rank, position): the same with 0 or 2
    workers and whatever the process drew before; distinct between positions; another seed,
    other draws."""
    np.random.seed(0)
    torch.manual_seed(0)
    in_process = _batches(_loader(0, grouping), 6)
    np.random.seed(1)
    torch.manual_seed(1)
    assert _batches(_loader(2, grouping), 6) == in_process
    draws = [x for b in in_process for _, x in b]
    assert len(set(draws)) == len(draws)
    assert _batches(_loader(0, grouping, seed=8), 6) != in_process


def test_loading_in_the_main_process_leaves_its_random_streams_alone():
    loader = iter(_loader(0))
    np.random.seed(5)
    torch.manual_seed(5)
    random.seed(5)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    np.random.seed(5)
    torch.manual_seed(5)
    random.seed(5)
    next(loader)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


@pytest.mark.parametrize("workers,grouping", [(0, False), (0, True), (2, True)])
def test_train_loader_resumes_exactly(workers, grouping):
    """A loader restored from the state of one that yielded k batches yields what the first one
    yields after them: same elements, same random draws (even with other seeds to start with)."""
    reference = _batches(_loader(workers, grouping), 9)
    for k in (1, 4):
        first = _loader(workers, grouping)
        assert _batches(first, k) == reference[:k]
        state = first.state_dict()
        assert state["sampler"]["seed"] == 3 and state["seed"] == 7
        if grouping and k == 4:
            assert state["pending"], "some element should be waiting in a bucket"
        resumed = _loader(workers, grouping, seed=99, sampler_seed=98)
        resumed.load_state_dict(state)
        assert _batches(resumed, 9 - k) == reference[k:]


def test_train_loader_state_is_checked():
    loader = _loader()
    for state, match in [
        ([1], "expects a dict"),
        ({"seed": 1, "position": 3}, "missing \\['pending'\\]"),
        ({"seed": 1, "position": -3, "pending": []}, "'position' must be an int >= 0"),
        ({"seed": 1.5, "position": 3, "pending": []}, "'seed' must be an int"),
        ({"seed": 1, "position": 3, "pending": [4]}, "must be < position 3"),
        ({"seed": 1, "position": 3, "pending": 2}, "'pending' must be a list"),
    ]:
        with pytest.raises(ValueError, match=match):
            loader.load_state_dict(state)
    assert loader.state_dict()["position"] == 0  # unchanged


def test_train_loader_seed_comes_from_the_config(tiny_dataset):
    cfg = _loader_cfg(tiny_dataset, 0, False)
    cfg.SEED = 123
    assert build_detection_train_loader(cfg).seed == 123
    cfg.SEED = -1
    np.random.seed(4)
    drawn = build_detection_train_loader(cfg).seed
    np.random.seed(4)
    assert build_detection_train_loader(cfg).seed == drawn  # shared_random_seed: reproducible once numpy is seeded
