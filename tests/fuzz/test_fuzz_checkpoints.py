"""Fuzzing the checkpoint readers (``.pth`` and Detectron2 ``.pkl``) through ``Checkpointer.load``.

Random bytes, mutations of valid checkpoints and pickles built to run code: nothing executes
(each malicious payload would create a marker file), and every failure is the clear checkpoint
error naming the file (``segcore.checkpoint.CheckpointReadError`` where it exists; the file
name in the message in any case).
"""
from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import segcore.checkpoint
from segcore.checkpoint import Checkpointer
from tests.fuzz import fuzz_settings, mutated_bytes

#: the clear error of unreadable checkpoints (None until segcore.checkpoint defines it)
CheckpointReadError = getattr(segcore.checkpoint, "CheckpointReadError", None)
SUFFIXES = (".pth", ".pkl")


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)
        self.norm = nn.BatchNorm2d(3)


class _Payload:
    """An object whose unpickling calls ``func(*args)``: what a malicious checkpoint holds."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _marker(tmp_dir) -> str:
    return os.path.join(str(tmp_dir), "PWNED")


def _payloads(marker: str):
    """Ways a pickle can run code on load; each one creates ``marker`` if it runs."""
    return [
        _Payload(os.system, f"touch '{marker}'"),
        _Payload(open, marker, "w"),
        _Payload(eval, f"open({marker!r}, 'w')"),
        _Payload(exec, f"open({marker!r}, 'w').close()"),
    ]


def _pth_bytes(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def _valid_pth() -> bytes:
    return _pth_bytes({"model": _Net().state_dict(), "iteration": 7})


def _valid_pkl(protocol: int = 2) -> bytes:
    weights = {k: v.numpy() for k, v in _Net().state_dict().items()}
    return pickle.dumps({"model": weights, "__author__": "fuzz"}, protocol=protocol)


def _malicious(marker: str):
    """(suffix, bytes) of checkpoints that would run code: bare payloads at every pickle protocol,
    payloads inside a weight dict, and payloads inside torch.save files (zip and legacy)."""
    out = []
    for payload in _payloads(marker):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            out.append((".pkl", pickle.dumps(payload, protocol=protocol)))
        out.append((".pkl", pickle.dumps({"model": {"conv.weight": payload}, "__author__": "x"}, protocol=2)))
        out.append((".pkl", pickle.dumps({"model": {"conv.weight": np.zeros(1)}, "blobs": payload}, protocol=4)))
        out.append((".pth", _pth_bytes({"model": {"conv.weight": payload}})))
        out.append((".pth", _pth_bytes(payload, legacy=True)))
    return out


_SEEDS: dict = {}


def _seeds(marker: str):
    """The mutation seeds, made once (a strategy must draw from the same seeds in every example)."""
    if marker not in _SEEDS:
        torch.manual_seed(0)
        _SEEDS[marker] = [_valid_pth(), _valid_pkl(2), _valid_pkl(4)] + [b for _, b in _malicious(marker)[:8]]
    return _SEEDS[marker]


def _load(path: str):
    return Checkpointer(_Net()).load(path)


def _assert_clear_error(error: BaseException, path: str, *, strict_type: bool = True) -> None:
    """The error is an Exception (not e.g. SystemExit) naming the file, and the clear checkpoint
    error when the project defines it (``strict_type``: the file could not be read at all)."""
    assert isinstance(error, Exception), repr(error)
    assert path in str(error), f"the error does not name {path}: {type(error).__name__}: {error}"
    if strict_type and CheckpointReadError is not None:
        assert isinstance(error, CheckpointReadError), f"{type(error).__name__}: {error}"
    if CheckpointReadError is not None and isinstance(error, CheckpointReadError):
        # the reader's reason is always given (a refusal names what it refused)
        assert error.reason.strip() and "refused it: ;" not in str(error), str(error)


def _try_load(path: str, data: bytes, *, strict_type: bool = True):
    with open(path, "wb") as f:
        f.write(data)
    try:
        result = _load(path)
    except Exception as e:  # noqa: BLE001 - every failure must be the clear error: checked here
        _assert_clear_error(e, path, strict_type=strict_type)
        return None
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoint_fuzz")


def test_valid_seeds_load(fuzz_dir):
    for suffix, data in ((".pth", _valid_pth()), (".pkl", _valid_pkl())):
        assert _try_load(str(fuzz_dir / f"valid{suffix}"), data) is not None


def test_malicious_checkpoints_run_nothing(fuzz_dir):
    marker = _marker(fuzz_dir)
    for i, (suffix, data) in enumerate(_malicious(marker)):
        path = str(fuzz_dir / f"evil_{i}{suffix}")
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(Exception) as e:
            _load(path)
        assert not os.path.exists(marker), f"loading {path} ran code"
        _assert_clear_error(e.value, path)


@fuzz_settings(60)
@given(data=st.binary(max_size=512), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(fuzz_dir, data, suffix):
    path = str(fuzz_dir / f"random{suffix}")
    _try_load(path, data)


@fuzz_settings(80)
@given(data=st.data(), suffix=st.sampled_from(SUFFIXES))
def test_mutated_checkpoints(fuzz_dir, data, suffix):
    """Mutations of valid files (of either format, under either suffix) and of malicious ones."""
    marker = _marker(fuzz_dir)
    blob = data.draw(mutated_bytes(_seeds(marker)))
    path = str(fuzz_dir / f"mutated{suffix}")
    # a mutation may leave a loadable file whose weights no longer fit: any other error names the file
    _try_load(path, blob, strict_type=False)
    assert not os.path.exists(marker), "a mutated checkpoint ran code"
