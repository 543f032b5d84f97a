"""Exact resume, for real: train_net.py is SIGKILLed right after the checkpoint of iteration N/2 and
restarted with --resume; its final weights equal an uninterrupted run's bit for bit.

The model is the tiny quickstart MaskFormer on the generated ADE20K-layout data, with the
quickstart's augmentations (random crop, colour jitter, flip), so every random stream matters:
the sampler's order, each image's augmentations (in the main process or in data-loader
workers), and what the training step draws. The uninterrupted run also evaluates right after
the checkpoint, which the resumed run never does. Every run is a fresh process with one thread,
so that float results can only differ through the training state.
"""
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from tests.e2e_utils import MASKFORMER_QUICKSTART, TINY_MASKFORMER
from tests.paths import REPO_ROOT

KILLER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_net_killed.py")
TRAIN_NET = os.path.join(REPO_ROOT, "train_net.py")

#: 4 iterations, a checkpoint after iterations 1 and 3, an evaluation after iteration 1 and at the end
OPTS = [*TINY_MASKFORMER, "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "2",
        "SEED", "42"]
#: two processes: as small as possible (2 iterations, a checkpoint after each, no evaluation)
OPTS_2PROC = [*TINY_MASKFORMER, "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()",
              "SEED", "42"]


def _run(script, out_dir, quickstart_root, opts, flags=(), kill_after=None):
    env = {**os.environ, "DETECTRON2_DATASETS": str(quickstart_root), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": REPO_ROOT}
    env.pop("SEGCORE_TEST_KILL_AFTER_CHECKPOINT", None)
    if kill_after:
        env["SEGCORE_TEST_KILL_AFTER_CHECKPOINT"] = kill_after
    cmd = [sys.executable, script, "--config-file", MASKFORMER_QUICKSTART, *flags, *opts, "OUTPUT_DIR", str(out_dir)]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def _train(out_dir, quickstart_root, opts, flags=()):
    proc = _run(TRAIN_NET, out_dir, quickstart_root, opts, flags)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(os.path.join(out_dir, "model_final.pth"), weights_only=True)


def _train_and_kill(out_dir, quickstart_root, opts, checkpoint, flags=()):
    proc = _run(KILLER, out_dir, quickstart_root, opts, flags, kill_after=checkpoint)
    assert proc.returncode != 0, "the run was not killed"
    if "--num-gpus" not in flags:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    else:  # the launcher reports its worker's death
        assert "terminated with signal SIGKILL" in proc.stderr, proc.stderr[-3000:]
    with open(os.path.join(out_dir, "last_checkpoint")) as f:
        assert f.read() == f"{checkpoint}.pth"
    assert not os.path.exists(os.path.join(out_dir, "model_final.pth"))


def _differing(a, b):
    """Names of the tensors of the model and optimizer states that differ between two checkpoints."""
    assert a["iteration"] == b["iteration"]
    diff = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    opt_a, opt_b = a["trainer"]["_trainer"]["optimizer"]["state"], b["trainer"]["_trainer"]["optimizer"]["state"]
    assert opt_a.keys() == opt_b.keys()
    diff += [f"optimizer.{p}.{n}" for p in opt_a for n in opt_a[p]
             if not torch.equal(torch.as_tensor(opt_a[p][n]), torch.as_tensor(opt_b[p][n]))]
    return diff


@pytest.fixture(scope="module")
def uninterrupted(quickstart_root, tmp_path_factory):
    """The final checkpoint of the uninterrupted run (no data-loader workers)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    final = _train(out, quickstart_root, [*OPTS, "DATALOADER.NUM_WORKERS", "0"])
    shutil.rmtree(out)  # 3 checkpoints of 137 MB
    return final


@pytest.mark.parametrize("workers", [0, 2])
def test_killed_and_resumed_equals_uninterrupted(uninterrupted, quickstart_root, tmp_path, workers):
    """With 0 and with 2 data-loader workers (the reference ran with 0: the loader draws each image's
    augmentations from its position, so the number of workers does not change what is drawn)."""
    out = tmp_path / "run"
    opts = [*OPTS, "DATALOADER.NUM_WORKERS", str(workers)]
    _train_and_kill(out, quickstart_root, opts, "model_0000001")
    killed_state = torch.load(out / "model_0000001.pth", weights_only=True)["trainer"]
    if workers == 0:
        # control: without the saved data-loader state the resumed run is not the same run
        control = tmp_path / "control"
        shutil.copytree(out, control)
        ckpt = torch.load(control / "model_0000001.pth", weights_only=True)
        del ckpt["trainer"]["_trainer"]["data_loader"]
        torch.save(ckpt, control / "model_0000001.pth")
        assert _differing(uninterrupted, _train(control, quickstart_root, opts, ["--resume"]))
        shutil.rmtree(control)

    resumed = _train(out, quickstart_root, opts, ["--resume"])
    with open(out / "log.txt") as f:
        assert "Starting training from iteration 2" in f.read()
    assert killed_state["iteration"] == 1 and killed_state["_trainer"]["data_loader"]["states"][0]["position"] >= 4
    assert _differing(uninterrupted, resumed) == []
    shutil.rmtree(out)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo required")
def test_killed_and_resumed_equals_uninterrupted_with_two_processes(quickstart_root, tmp_path):
    """--num-gpus 2 on the CPU (gloo): the main process is killed after the checkpoint of iteration 0."""
    flags = ["--num-gpus", "2", "--dist-url", "auto"]
    opts = [*OPTS_2PROC, "DATALOADER.NUM_WORKERS", "0"]
    reference = _train(tmp_path / "uninterrupted", quickstart_root, opts, flags)
    shutil.rmtree(tmp_path / "uninterrupted")
    out = tmp_path / "run"
    _train_and_kill(out, quickstart_root, opts, "model_0000000", flags)
    saved = torch.load(out / "model_0000000.pth", weights_only=True)["trainer"]["_trainer"]["data_loader"]
    assert saved["world_size"] == 2 and len(saved["states"]) == 2  # every process's position
    resumed = _train(out, quickstart_root, opts, ["--resume", *flags])
    assert _differing(reference, resumed) == []
    shutil.rmtree(out)
