"""Divergence is caught: train_net.py with a huge learning rate (SGD, no gradient clipping) on the
tiny quickstart MaskFormer stops with a FloatingPointError that names the iteration and what is not
finite, and never writes or tags a checkpoint with non-finite weights, so --resume restarts from
the last good one."""
import os

import pytest
import torch

from tests.e2e_utils import MASKFORMER_QUICKSTART, TINY_MASKFORMER, load_script

DIVERGING = [*TINY_MASKFORMER, "SOLVER.OPTIMIZER", "SGD", "SOLVER.CLIP_GRADIENTS.ENABLED", "False",
             "SOLVER.MAX_ITER", "3", "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()", "SEED", "42"]


def _checkpoints_are_finite(out):
    names = sorted(n for n in os.listdir(out) if n.endswith(".pth"))
    for name in names:
        weights = torch.load(os.path.join(out, name), weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()), name
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]
    return names


def test_non_finite_predictions_stop_training_before_the_matcher(quickstart_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    train_net = load_script("train_net", "train_net.py")
    out = str(tmp_path / "out")
    with pytest.raises(FloatingPointError) as e:
        train_net.cli(["--config-file", MASKFORMER_QUICKSTART, *DIVERGING, "SOLVER.BASE_LR", "1e8", "OUTPUT_DIR", out])
    msg = str(e.value)
    # not scipy's "matrix contains invalid numeric entries": the iteration, the outputs, their layers
    assert msg.startswith("At iteration=1: The model's predictions are not finite"), msg
    assert "pred_logits of aux_outputs[0] (decoder layer 1 of 2)" in msg
    assert "pred_masks of the final outputs (decoder layer 2 of 2)" in msg
    assert "SOLVER.BASE_LR" in msg
    assert _checkpoints_are_finite(out) == ["model_0000000.pth"]


def test_a_diverged_model_is_never_checkpointed_and_resume_restarts_from_the_last_good_one(
        quickstart_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    train_net = load_script("train_net", "train_net.py")
    out = str(tmp_path / "out")
    args = ["--config-file", MASKFORMER_QUICKSTART, *DIVERGING, "SOLVER.BASE_LR", "1e4", "OUTPUT_DIR", out]
    with pytest.raises(FloatingPointError) as e:
        train_net.cli(args)  # the loss of iteration 0 is finite but huge: its step makes the weights NaN
    msg = str(e.value)
    assert msg.startswith(f"At iteration=1: Refusing to save {os.path.join(out, 'model_0000001.pth')}"), msg
    assert "backbone.stem.conv1.weight (" in msg and "NaN" in msg
    assert f"last_checkpoint still names {os.path.join(out, 'model_0000000.pth')}" in msg
    assert _checkpoints_are_finite(out) == ["model_0000000.pth"]
    with open(os.path.join(out, "last_checkpoint")) as f:
        assert f.read() == "model_0000000.pth"

    # --resume restarts from it (and, with the same learning rate, diverges the same way again)
    with pytest.raises(FloatingPointError, match="At iteration=1: Refusing to save"):
        train_net.cli(["--config-file", MASKFORMER_QUICKSTART, "--resume", *args[2:]])
    with open(os.path.join(out, "log.txt")) as f:
        assert "Starting training from iteration 1" in f.read()
    assert _checkpoints_are_finite(out) == ["model_0000000.pth"]
