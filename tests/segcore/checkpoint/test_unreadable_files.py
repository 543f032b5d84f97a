"""Weight files that cannot be read: one clear CheckpointReadError naming the file and the format expected."""
import io
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from segcore.checkpoint import CheckpointReadError, Checkpointer, UnsafeCheckpointError, UnsafePickleError

PTH_EXPECTED = "Expected a PyTorch .pth checkpoint"
PKL_EXPECTED = "Expected a Detectron2 .pkl weight file"


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)


def _load(path):
    return Checkpointer(_Net()).load(str(path))


def _pth_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _pkl_bytes() -> bytes:
    weights = {k: v.numpy() for k, v in _Net().state_dict().items()}
    return pickle.dumps({"model": weights, "__author__": "test"}, protocol=2)


def _check(error: CheckpointReadError, path, expected: str, reason: str):
    msg = str(error)
    assert str(path) in msg and expected in msg and reason in msg, msg
    assert error.path == str(path)


@pytest.mark.parametrize("suffix,expected", [(".pth", PTH_EXPECTED), (".pkl", PKL_EXPECTED), ("", PTH_EXPECTED)])
def test_text_file(tmp_path, suffix, expected):
    path = tmp_path / f"weights{suffix}"
    path.write_text("https://example.com/this-is-not-a-weight-file\n")  # e.g. a saved download page
    with pytest.raises(CheckpointReadError) as e:
        _load(path)
    _check(e.value, path, expected, "truncated, corrupt or not a weight file")


def test_truncated_pkl(tmp_path):
    data = _pkl_bytes()
    path = tmp_path / "model_final.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointReadError) as e:
        _load(path)
    _check(e.value, path, PKL_EXPECTED, "truncated, corrupt or not a weight file")
    assert not isinstance(e.value, UnsafePickleError)  # corrupt, not refused


def test_truncated_pth(tmp_path):
    data = _pth_bytes({"model": _Net().state_dict()})
    path = tmp_path / "model_final.pth"
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointReadError) as e:
        _load(path)
    _check(e.value, path, PTH_EXPECTED, "truncated, corrupt or not a weight file")


@pytest.mark.parametrize("obj,reason", [
    ([torch.zeros(1)], "it holds a list, not a dict"),
    ({"model": [torch.zeros(1)]}, "its 'model' entry is a list, not a dict of weights"),
    ({"model": {"conv.weight": "not a tensor"}}, "1 of its 1 weights are not tensors or arrays"),
    ({"state_dict": {"conv.weight": torch.zeros(3, 2, 1, 1)}}, "'state_dict': dict"),  # another project's layout
])
def test_pth_of_the_wrong_shape(tmp_path, obj, reason):
    path = tmp_path / "weights.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointReadError) as e:
        _load(path)
    _check(e.value, path, PTH_EXPECTED, reason)


def test_pkl_of_the_wrong_shape(tmp_path):
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps([np.zeros(2)]))
    with pytest.raises(CheckpointReadError) as e:
        _load(path)
    _check(e.value, path, PKL_EXPECTED, "it holds a list, not a dict")


def test_refused_objects_are_a_read_error_and_an_unpickling_error(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": _Net().state_dict(), "module": _Net()}, path)  # a whole module pickled
    with pytest.raises(UnsafeCheckpointError) as e:
        _load(path)
    assert isinstance(e.value, CheckpointReadError) and isinstance(e.value, pickle.UnpicklingError)
    _check(e.value, path, PTH_EXPECTED, "refused it: Unsupported global: GLOBAL ")
    assert "_Net" in str(e.value) and "\n" not in str(e.value)


def test_random_bytes_are_corrupt_not_unsafe(tmp_path):
    """Bytes that are not a pickle make torch's weights-only unpickler fail: that is a corrupt file
    (with the unpickler's reason), not an unsafe one."""
    rng = np.random.default_rng(0)
    path = tmp_path / "random.pth"
    for _ in range(20):
        path.write_bytes(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
        with pytest.raises(CheckpointReadError) as e:
            _load(path)
        assert not isinstance(e.value, UnsafeCheckpointError), str(e.value)
        _check(e.value, path, PTH_EXPECTED, "truncated, corrupt or not a weight file")
        reason = e.value.reason
        assert reason.endswith(")") and not reason.endswith(": )") and "\n" not in str(e.value), reason


def test_read_error_survives_pickling():
    # e.g. raised in a worker process and sent to the launcher
    err = CheckpointReadError("/x/w.pth", "a PyTorch .pth checkpoint", "it holds a list, not a dict")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is CheckpointReadError and str(copy) == str(err) and copy.path == "/x/w.pth"


def test_every_truncation_is_a_read_error(tmp_path):
    """A save cut short at any byte (a full disk, a copy interrupted) is reported the same way."""
    for suffix, data in ((".pth", _pth_bytes({"model": _Net().state_dict()})), (".pkl", _pkl_bytes())):
        path = tmp_path / f"cut{suffix}"
        for n in sorted(set(range(0, len(data), max(1, len(data) // 60))) | {len(data) - 1}):
            path.write_bytes(data[:n])
            with pytest.raises(CheckpointReadError):
                _load(path)
        path.write_bytes(data)  # the whole file loads
        _load(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".pth", ".pkl"]), position=st.floats(0, 1, exclude_max=True),
       flip=st.integers(1, 255), junk=st.binary(max_size=64))
def test_corrupt_files_load_or_raise_a_read_error(tmp_path, suffix, position, flip, junk):
    """Flipped bits and inserted junk: the file either still loads (e.g. a change inside tensor
    data) or raises CheckpointReadError, never another exception type."""
    data = bytearray(_pth_bytes({"model": _Net().state_dict()}) if suffix == ".pth" else _pkl_bytes())
    i = int(position * len(data))
    data[i] ^= flip
    data[i:i] = junk
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(bytes(data))
    try:
        _load(path)
    except CheckpointReadError as e:
        assert str(path) in str(e)
    finally:
        os.unlink(path)
