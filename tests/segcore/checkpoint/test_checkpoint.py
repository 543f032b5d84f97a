"""Checkpointer: round trips, atomic saves, the mismatch report, safe .pkl loading."""
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer, UnsafePickleError, safe_load
from segcore.checkpoint.safe_pickle import safe_loads


class _Net(nn.Module):
    def __init__(self, out: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 1)
        self.head = nn.Linear(4, out)


def _ckpt(model, save_dir, **kw):
    return Checkpointer(model, str(save_dir), save_to_disk=True, **kw)


def _assert_same_weights(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def checkpoint_log():
    logger = logging.getLogger("segcore.checkpoint.checkpointer")
    handler = _ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.messages
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_save_load_round_trip_with_checkpointables(tmp_path):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    loss = model.head(model.conv(torch.randn(1, 2, 3, 3)).mean((2, 3))).sum()
    loss.backward()
    opt.step()
    _ckpt(model, tmp_path, optimizer=opt).save("model_0000009", iteration=9)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"

    torch.manual_seed(1)
    model2 = _Net()
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.5)
    ck2 = _ckpt(model2, tmp_path, optimizer=opt2)
    assert ck2.has_checkpoint()
    assert ck2.get_checkpoint_file() == os.path.join(str(tmp_path), "model_0000009.pth")
    extra = ck2.resume_or_load("", resume=True)
    assert extra == {"iteration": 9}
    _assert_same_weights(model, model2)
    assert opt2.param_groups[0]["lr"] == 0.01
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert torch.equal(s1[0]["exp_avg"], s2[0]["exp_avg"])
    assert ck2.incompatible_keys.missing_keys == [] and ck2.incompatible_keys.unexpected_keys == []


def test_resume_false_loads_the_model_only(tmp_path):
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    _ckpt(model, tmp_path / "run", optimizer=opt).save("model_final")
    weights = str(tmp_path / "run" / "model_final.pth")

    model2 = _Net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.7)
    # another output folder without checkpoints: resume=True falls back to the given weights
    extra = _ckpt(model2, tmp_path / "other", optimizer=opt2).resume_or_load(weights, resume=True)
    _assert_same_weights(model, model2)
    assert opt2.param_groups[0]["lr"] == 0.7  # optimizer untouched
    assert "optimizer" in extra  # not consumed, handed back


def test_bare_state_dict_file(tmp_path):
    model = _Net()
    path = tmp_path / "bare.pth"
    torch.save(model.state_dict(), path)
    model2 = _Net()
    _ckpt(model2, "").load(str(path))
    _assert_same_weights(model, model2)


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    missing = str(tmp_path / "nope" / "model.pth")
    with pytest.raises(FileNotFoundError, match="nope/model.pth"):
        _ckpt(_Net(), tmp_path).load(missing)
    assert _ckpt(_Net(), tmp_path).load("") == {}


def test_non_weight_objects_are_refused_by_torch_load(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": _Net().state_dict(), "obj": _Net()}, path)  # a whole module pickled
    with pytest.raises(pickle.UnpicklingError, match="evil.pth"):
        _ckpt(_Net(), "").load(str(path))


def test_crash_during_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = _Net()
    ck = _ckpt(model, tmp_path)
    ck.save("model_0000001")
    good = {k: v.clone() for k, v in model.state_dict().items()}
    before = sorted(os.listdir(tmp_path))

    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"PARTIAL-CHECKPOINT-BYTES")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", crashing_save)
    with torch.no_grad():
        model.head.weight.add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        ck.save("model_0000002")
    # the crash also hits a save over an existing name: the old file stays complete
    with pytest.raises(OSError):
        ck.save("model_0000001")
    monkeypatch.setattr(torch, "save", real_save)

    assert sorted(os.listdir(tmp_path)) == before == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    model2 = _Net()
    _ckpt(model2, tmp_path).resume_or_load("", resume=True)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, good[k])


def test_mismatch_report_and_strict(tmp_path, checkpoint_log):
    src = _Net(out=5)  # head has another shape
    sd = src.state_dict()
    sd["extra.weight"] = torch.ones(2)
    del sd["conv.bias"]
    path = tmp_path / "m.pth"
    torch.save({"model": sd}, path)

    model = _Net(out=3)
    head_before = model.head.weight.detach().clone()
    ck = _ckpt(model, "")
    ck.load(str(path))
    inc = ck.incompatible_keys
    assert inc.missing_keys == ["conv.bias"]
    assert inc.unexpected_keys == ["extra.weight"]
    assert sorted(k for k, _, _ in inc.incorrect_shapes) == ["head.bias", "head.weight"]
    shapes = {k: (a, b) for k, a, b in inc.incorrect_shapes}
    assert shapes["head.weight"] == ((5, 4), (3, 4))
    # mismatched weights are skipped, matching ones loaded
    assert torch.equal(model.head.weight, head_before)
    assert torch.equal(model.conv.weight, src.conv.weight)
    report = "\n".join(checkpoint_log)
    assert "head.weight: (5, 4) in the checkpoint, (3, 4) in the model" in report
    assert "missing in the checkpoint: conv.bias" in report
    assert "unexpected in the checkpoint (unused): extra.weight" in report

    with pytest.raises(RuntimeError, match="head.weight") as e:
        _ckpt(_Net(out=3), "").load(str(path), strict=True)
    assert "conv.bias" in str(e.value) and "extra.weight" in str(e.value)


def test_ddp_prefix_is_stripped(tmp_path):
    model = _Net()
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"model": sd}, tmp_path / "ddp.pth")
    model2 = _Net()
    ck = _ckpt(model2, "")
    ck.load(str(tmp_path / "ddp.pth"), strict=True)
    _assert_same_weights(model, model2)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"model": {"w": np.zeros(2)}, "x": _Evil(marker)})
    with pytest.raises(UnsafePickleError, match="system") as e:
        safe_loads(data, source="evil.pkl")
    assert "evil.pkl" in str(e.value)
    assert not marker.exists()

    # through the checkpointer, for a .pkl file
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match="evil.pkl"):
        _ckpt(_Net(), "").load(str(path))
    assert not marker.exists()

    # other non-allow-listed globals are refused too
    with pytest.raises(UnsafePickleError, match="torch"):
        safe_loads(pickle.dumps(torch.nn.Linear))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_admits_arrays_and_containers(protocol):
    obj = {
        "model": {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)},
        "scalar": np.float32(1.5),
        "meta": [1, 2.5, "s", b"bytes", (True, None), {1, 2}],
    }
    out = safe_loads(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(out["model"]["a"], obj["model"]["a"])
    assert out["model"]["a"].dtype == np.float32
    np.testing.assert_array_equal(out["model"]["b"], obj["model"]["b"])
    assert out["scalar"] == np.float32(1.5)
    assert out["meta"] == obj["meta"]


def test_detectron2_pkl_loads_into_the_model(tmp_path):
    model = _Net()
    data = {
        "model": {k: v.numpy() for k, v in model.state_dict().items()},
        "__author__": "segcore-test",
    }
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    model2 = _Net()
    _ckpt(model2, "").load(str(path), strict=True)
    _assert_same_weights(model, model2)
    with open(path, "rb") as f:
        assert set(safe_load(f)) == {"model", "__author__"}
