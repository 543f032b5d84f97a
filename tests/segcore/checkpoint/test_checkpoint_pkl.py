"""Weight files: Detectron2 .pkl formats, name matching, the restricted unpickler, URL caching."""
import io
import logging
import os
import pickle
import pickletools
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from segcore.checkpoint import AmbiguousMatchError, Checkpointer, UnsafePickleError, convert_basic_c2_names
from segcore.checkpoint.c2_model_loading import align_and_update_state_dicts, group_keys_by_prefix
from segcore.checkpoint.safe_pickle import safe_loads
from segcore.utils import file_io
from segcore.utils.file_io import PathManager, get_cache_path


class _Block(nn.Module):
    def __init__(self, c: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.conv1.norm = nn.BatchNorm2d(c)  # Detectron2's Conv2d keeps its norm as a child


class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = nn.Conv2d(3, 4, 3, bias=False)
        self.res2 = nn.Sequential(_Block(), _Block())


class _Full(nn.Module):
    """A segmentation-style model: ``backbone.*`` plus a head that no pretrained file has."""

    def __init__(self):
        super().__init__()
        self.backbone = _Backbone()
        self.sem_seg_head = nn.Module()
        self.sem_seg_head.predictor = nn.Conv2d(4, 5, 1)
        self.register_buffer("pixel_mean", torch.zeros(3, 1, 1))


def _random_state(module: nn.Module, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g).to(v.dtype) for k, v in module.state_dict().items()}


def _write_pkl(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return str(path)


@pytest.fixture
def log_messages():
    logger = logging.getLogger("segcore.checkpoint.checkpointer")
    messages = []

    class _H(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler, old = _H(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(old)


# ------------------------------------------------------------------------------- file formats
@pytest.mark.parametrize("fmt", ["pkl_heuristics", "pth_bare", "pth_model"])
def test_backbone_only_file_loads_into_full_model(tmp_path, fmt, log_messages):
    src = _random_state(_Backbone(), seed=1)
    if fmt == "pkl_heuristics":
        path = _write_pkl(tmp_path / "R.pkl", {"model": {k: v.numpy() for k, v in src.items()},
                                               "__author__": "torchvision", "matching_heuristics": True})
    else:
        path = str(tmp_path / "R.pth")
        torch.save(src if fmt == "pth_bare" else {"model": src, "iteration": 3}, path)

    model = _Full()
    head_before = model.sem_seg_head.predictor.weight.detach().clone()
    ck = Checkpointer(model)
    extra = ck.load(path)
    for k, v in src.items():
        assert torch.equal(model.state_dict()["backbone." + k], v), k
    assert ck.matched_keys["backbone.res2.1.conv1.norm.running_var"] == "res2.1.conv1.norm.running_var"
    assert torch.equal(model.sem_seg_head.predictor.weight, head_before)
    inc = ck.incompatible_keys
    assert inc.missing_keys == ["sem_seg_head.predictor.weight", "sem_seg_head.predictor.bias"]
    assert inc.unexpected_keys == [] and inc.incorrect_shapes == []
    # metadata is not handed back, other top-level data is
    assert extra == ({"iteration": 3} if fmt == "pth_model" else {})
    log = "\n".join(log_messages)
    assert "missing in the checkpoint: sem_seg_head.predictor.{bias, weight}" in log
    assert "backbone.res2.0.conv1.norm.{" in log and "<- res2.0.conv1.norm" in log


def test_model_pkl_without_author_is_matched(tmp_path):
    src = _random_state(_Backbone(), seed=5)
    path = _write_pkl(tmp_path / "m.pkl", {"model": {k: v.numpy() for k, v in src.items()}})
    model = _Full()
    Checkpointer(model).load(path)
    assert torch.equal(model.backbone.res2[1].conv1.weight, src["res2.1.conv1.weight"])


def test_detectron2_pkl_without_heuristics_uses_exact_names(tmp_path):
    src = _random_state(_Backbone(), seed=2)
    path = _write_pkl(tmp_path / "m.pkl", {"model": {k: v.numpy() for k, v in src.items()}, "__author__": "x"})
    model = _Full()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ck = Checkpointer(model)
    ck.load(path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing loaded
    assert sorted(ck.incompatible_keys.unexpected_keys) == sorted(src)
    assert ck.matched_keys == {}


def test_longest_dot_aligned_suffix_wins():
    model = {"backbone.stem.conv1.weight": torch.zeros(2), "backbone.res2.conv1.weight": torch.zeros(2),
             "head.myconv1.weight": torch.zeros(2)}
    ckpt = {"conv1.weight": torch.ones(2), "res2.conv1.weight": torch.full((2,), 2.0)}
    res = align_and_update_state_dicts(model, ckpt)
    assert res.matched == {"backbone.stem.conv1.weight": "conv1.weight",
                           "backbone.res2.conv1.weight": "res2.conv1.weight"}
    assert "head.myconv1.weight" not in res.state_dict  # "conv1.weight" is not dot-aligned in it
    assert torch.equal(res.state_dict["backbone.res2.conv1.weight"], ckpt["res2.conv1.weight"])
    assert res.unused == []


def test_shape_mismatch_is_skipped_and_reported(tmp_path, log_messages):
    src = _random_state(_Backbone(), seed=3)
    src["stem.conv1.weight"] = torch.ones(4, 3, 5, 5)  # another kernel size
    src["sem_seg_head.predictor.weight"] = torch.ones(7, 4, 1, 1)  # exact name, another class count
    path = str(tmp_path / "m.pth")
    torch.save({"model": src}, path)
    model = _Full()
    stem_before = model.backbone.stem.conv1.weight.detach().clone()
    ck = Checkpointer(model)
    ck.load(path)
    assert torch.equal(model.backbone.stem.conv1.weight, stem_before)
    assert torch.equal(model.backbone.res2[0].conv1.weight, src["res2.0.conv1.weight"])
    inc = ck.incompatible_keys
    assert sorted(inc.incorrect_shapes) == [
        ("backbone.stem.conv1.weight", (4, 3, 5, 5), (4, 3, 3, 3)),
        ("sem_seg_head.predictor.weight", (7, 4, 1, 1), (5, 4, 1, 1)),
    ]
    # a mismatched key is neither missing nor, for an exact name, unexpected
    assert inc.missing_keys == ["sem_seg_head.predictor.bias"]
    assert inc.unexpected_keys == ["stem.conv1.weight"]  # loaded nowhere
    log = "\n".join(log_messages)
    assert ("backbone.stem.conv1.weight (checkpoint key 'stem.conv1.weight'): (4, 3, 5, 5) in the checkpoint, "
            "(4, 3, 3, 3) in the model") in log
    with pytest.raises(RuntimeError, match="backbone.stem.conv1.weight"):
        Checkpointer(_Full()).load(path, strict=True)


def test_ambiguous_match_is_an_error_naming_both_keys(tmp_path):
    model = nn.Module()
    model.a = nn.Module()
    model.a.proj = nn.Linear(3, 3)
    model.b = nn.Module()
    model.b.proj = nn.Linear(3, 3)
    path = _write_pkl(tmp_path / "amb.pkl", {"model": {"proj.weight": np.ones((3, 3), np.float32)},
                                             "__author__": "third_party", "matching_heuristics": True})
    with pytest.raises(AmbiguousMatchError) as e:
        Checkpointer(model).load(path)
    msg = str(e.value)
    assert "'proj.weight'" in msg and "'a.proj.weight'" in msg and "'b.proj.weight'" in msg
    assert "amb.pkl" in msg
    # same names but different shapes: only one can take it, no ambiguity
    model.b.proj = nn.Linear(3, 2)
    ck = Checkpointer(model)
    ck.load(path)
    assert torch.equal(model.a.proj.weight, torch.ones(3, 3))
    assert [k for k, _, _ in ck.incompatible_keys.incorrect_shapes] == ["b.proj.weight"]


def test_caffe2_pkl_names_are_converted(tmp_path):
    model = _Full()
    names = {"conv1_w": "stem.conv1.weight", "res2_0_branch2a_w": "res2.0.conv1.weight",
             "res2_0_branch2a_bn_s": "res2.0.conv1.norm.weight", "res2_0_branch2a_bn_b": "res2.0.conv1.norm.bias",
             "res2_0_branch2a_bn_rm": "res2.0.conv1.norm.running_mean",
             "res2_0_branch2a_bn_riv": "res2.0.conv1.norm.running_var"}
    assert convert_basic_c2_names(["res_conv1_bn_s", "res3_0_branch1_bn_b", "res4_1_branch2c_w"]) == [
        "stem.conv1.norm.weight", "res3.0.shortcut.norm.bias", "res4.1.conv3.weight"]
    sd = model.state_dict()
    blobs = {c2: np.random.default_rng(0).standard_normal(tuple(sd["backbone." + d2].shape)).astype(np.float32)
             for c2, d2 in names.items()}
    blobs["res2_0_branch2a_bn_s_momentum"] = np.zeros(4, np.float32)  # optimizer state: dropped
    path = _write_pkl(tmp_path / "c2.pkl", {"blobs": blobs})
    ck = Checkpointer(model)
    ck.load(path)
    for c2, d2 in names.items():
        np.testing.assert_array_equal(model.state_dict()["backbone." + d2].numpy(), blobs[c2])
    assert ck.matched_keys["backbone.res2.0.conv1.weight"] == "res2_0_branch2a_w"
    assert ck.incompatible_keys.unexpected_keys == []


def test_group_keys_by_prefix():
    assert group_keys_by_prefix(["a.b.weight", "a.b.bias", "c", "a.x"]) == ["a.b.{bias, weight}", "a.x", "c"]


# --------------------------------------------------------------------------- restricted pickle
def _global_pickle(module: str, name: str, arg: str = "'x'") -> bytes:
    """A protocol-0 pickle that calls ``module.name(arg)`` (GLOBAL + REDUCE)."""
    return f"c{module}\n{name}\n(S{arg}\ntR.".encode()


@pytest.mark.parametrize("module,name", [
    ("builtins", "eval"), ("__builtin__", "eval"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("os", "system"), ("posix", "system"), ("subprocess", "Popen"), ("numpy", "load"),
    ("numpy.lib.npyio", "load"), ("numpy.core.multiarray", "frombuffer"), ("torch", "load"),
    ("torch._utils", "_rebuild_tensor_v2"), ("collections", "defaultdict"), ("numpy.dtypes", "system"),
])
def test_restricted_unpickler_refuses_globals(module, name, tmp_path):
    data = _global_pickle(module, name)
    pickletools.dis(data, out=io.StringIO())  # a well-formed pickle
    with pytest.raises(UnsafePickleError, match=name) as e:
        safe_loads(data, source="bad.pkl")
    assert "bad.pkl" in str(e.value)
    # also inside a real weight file, with STACK_GLOBAL (protocol 4)
    path = tmp_path / "bad.pkl"
    payload = pickle.dumps({"model": {"w": np.zeros(1)}, "__author__": "x"}, protocol=4)
    m, n = module.encode(), name.encode()
    evil = b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93)R."
    path.write_bytes(evil)
    with pytest.raises(UnsafePickleError, match="bad.pkl"):
        Checkpointer(nn.Linear(1, 1)).load(str(path))
    assert safe_loads(payload)["__author__"] == "x"


def test_restricted_unpickler_admits_object_arrays_of_safe_values_only():
    arr = np.array([1, "a", (2, 3)], dtype=object)
    out = safe_loads(pickle.dumps(arr, protocol=2))
    assert list(out) == [1, "a", (2, 3)]

    class _Bad:
        def __reduce__(self):
            return (os.system, ("true",))

    with pytest.raises(UnsafePickleError, match="system"):
        safe_loads(pickle.dumps(np.array([_Bad()], dtype=object)))


# ------------------------------------------------------------------------------- URL / cache
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network: the download function raises; the cache lives in tmp_path."""
    calls = []

    def no_network(url, dirname, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_io, "download", no_network)
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))
    return calls


def test_detectron2_path_resolves_to_model_zoo_and_cache(offline, tmp_path):
    name = f"ImageNetPretrained/test/{tmp_path.name}-R-50.pkl"
    expected = os.path.join(str(tmp_path / "cache"), "detectron2", "ImageNetPretrained", "test", f"{tmp_path.name}-R-50.pkl")
    assert get_cache_path("detectron2://" + name) == expected
    assert get_cache_path(file_io.MODEL_ZOO_PREFIX + name) == expected

    with pytest.raises(OSError) as e:
        Checkpointer(_Full()).load("detectron2://" + name)
    msg = str(e.value)
    assert "https://dl.fbaipublicfiles.com/detectron2/" + name in msg  # which file
    assert expected in msg and "MODEL.WEIGHTS" in msg  # where to put it, or what to do instead
    assert offline == ["https://dl.fbaipublicfiles.com/detectron2/" + name]

    # the file placed at the cache path is used without any download
    src = _random_state(_Backbone(), seed=4)
    os.makedirs(os.path.dirname(expected), exist_ok=True)
    _write_pkl(expected, {"model": {k: v.numpy() for k, v in src.items()}, "__author__": "torchvision",
                          "matching_heuristics": True})
    model = _Full()
    Checkpointer(model).load("detectron2://" + name)
    assert torch.equal(model.backbone.stem.conv1.weight, src["stem.conv1.weight"])
    assert PathManager.get_local_path("https://dl.fbaipublicfiles.com/detectron2/" + name) == expected
    assert len(offline) == 1  # no second download attempt


def test_http_url_offline_message_names_url_and_cache_path(offline, tmp_path):
    url = f"https://example.com/weights/{tmp_path.name}/swin_tiny.pkl"
    with pytest.raises(OSError, match="Cannot download https://example.com/weights/") as e:
        PathManager.get_local_path(url)
    assert os.path.join(str(tmp_path / "cache"), "weights", tmp_path.name, "swin_tiny.pkl") in str(e.value)
