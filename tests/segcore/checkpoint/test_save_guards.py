"""What Checkpointer.save refuses (non-finite weights) and what it cleans up (a killed save's temporary files)."""
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer
from tests.paths import REPO_ROOT


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)


def _ckpt(model, save_dir):
    return Checkpointer(model, str(save_dir), save_to_disk=True)


def test_non_finite_weights_are_never_saved_nor_tagged(tmp_path):
    model = _Net()
    ck = _ckpt(model, tmp_path)
    ck.save("model_0000001", iteration=1)
    with torch.no_grad():
        model.conv.weight[0, 0, 0, 0] = float("nan")
        model.head.bias[1] = float("inf")
        model.norm.running_var[2] = float("-inf")  # buffers count too
    with pytest.raises(FloatingPointError) as e:
        ck.save("model_0000002", iteration=2)
    msg = str(e.value)
    assert "model_0000002.pth" in msg and "3 of the model's" in msg
    for name in ("conv.weight (1 NaN, 0 inf of 8)", "head.bias (0 NaN, 1 inf of 3)", "norm.running_var (0 NaN, 1 inf of 4)"):
        assert name in msg
    assert "last_checkpoint still names" in msg and "model_0000001.pth" in msg
    assert "conv.bias" not in msg and "norm.num_batches_tracked" not in msg
    # nothing written, the tag unchanged, no temporary file left
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    # so resuming restarts from the last good checkpoint
    fresh = _Net()
    assert _ckpt(fresh, tmp_path).resume_or_load("", resume=True)["iteration"] == 1
    assert all(torch.isfinite(v).all() for v in fresh.state_dict().values() if v.is_floating_point())


def test_non_finite_weights_without_a_previous_checkpoint(tmp_path):
    model = _Net()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="head.weight .12 NaN, 0 inf of 12.*names no checkpoint"):
        _ckpt(model, tmp_path).save("model_final")
    assert os.listdir(tmp_path) == []


STALE = [".model_0000004.pth.k2j_a9zq.tmp", ".model_final.pth.0abcdefg.tmp", ".last_checkpoint.x1y2z3w4.tmp"]
NOT_OURS = [".notes.txt.abcdefgh.tmp", "model_0000004.pth.tmp", ".model_0000004.pth.short.tmp", "results.tmp",
            "model_0000003.pth"]


def _make_files(folder, names):
    for name in names:
        (folder / name).write_bytes(b"PARTIAL")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.text = ""

    def emit(self, record):
        self.text += record.getMessage() + "\n"


def test_stale_temporary_files_are_removed_at_the_first_save(tmp_path):
    _make_files(tmp_path, STALE + NOT_OURS)
    ck = _ckpt(_Net(), tmp_path)
    records = _Records()  # on the logger itself: the segcore loggers may not propagate to the root
    logger = logging.getLogger("segcore.checkpoint.checkpointer")
    logger.addHandler(records)
    try:
        ck.save("model_0000005")
    finally:
        logger.removeHandler(records)
    assert sorted(os.listdir(tmp_path)) == sorted(NOT_OURS + ["last_checkpoint", "model_0000005.pth"])
    assert "Removed 3 half-written temporary file(s)" in records.text
    assert all(name in records.text for name in STALE)


def test_only_a_saving_checkpointer_removes_temporary_files(tmp_path):
    _make_files(tmp_path, STALE)
    # e.g. an evaluation of this folder's checkpoints on another process while training writes there
    assert Checkpointer(_Net(), str(tmp_path), save_to_disk=False).remove_stale_temporary_files() == []
    Checkpointer(_Net(), str(tmp_path), save_to_disk=False).save("model_0000001")
    assert sorted(os.listdir(tmp_path)) == sorted(STALE)
    removed = _ckpt(_Net(), tmp_path).remove_stale_temporary_files()
    assert sorted(os.path.basename(p) for p in removed) == sorted(STALE) and os.listdir(tmp_path) == []


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import torch
    from torch import nn
    from segcore.checkpoint import Checkpointer

    def save_half_then_die(obj, f, *args, **kwargs):
        f.write(b"PK\\x03\\x04 the first bytes of a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    ck = Checkpointer(nn.Linear(2, 2), sys.argv[1], save_to_disk=True)
    ck.save("model_0000001")
    torch.save = save_half_then_die
    ck.save("model_0000002")
""")


def test_a_killed_save_leaves_a_temporary_file_that_the_next_run_removes(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model_0000002.pth.")
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"

    ck = _ckpt(nn.Linear(2, 2), tmp_path)
    assert ck.resume_or_load("", resume=True) == {}  # the good checkpoint loads
    ck.save("model_0000002")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth", "model_0000002.pth"]
