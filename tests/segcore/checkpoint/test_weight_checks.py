"""Weights that load but must not be used: non-finite values, and incomplete models where the
caller needs a complete one (``require_all``, ``load_inference_weights``)."""
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer, IncompleteWeightsError, NonFiniteWeightsError, non_finite_entries
from segcore.config import get_cfg
from segcore.engine import load_inference_weights


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)
        self.norm = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 4)


def _state(**changes):
    torch.manual_seed(0)
    state = _Net().state_dict()
    state.update(changes)
    return state


def _save(tmp_path, state, name="w.pth"):
    path = tmp_path / name
    torch.save({"model": state}, path)
    return str(path)


def _cfg(weights, allow_partial=False, allow_non_finite=False):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.ALLOW_PARTIAL_WEIGHTS = allow_partial
    cfg.MODEL.ALLOW_NON_FINITE_WEIGHTS = allow_non_finite
    return cfg


def test_non_finite_entries_counts_nan_and_inf_in_tensors_and_arrays():
    w = torch.zeros(2, 3)
    w[0, 0], w[1, 2], w[1, 1] = float("nan"), float("inf"), -float("inf")
    entries, num_float = non_finite_entries({
        "a": w, "b": torch.ones(3), "idx": torch.tensor([1, 2]),
        "c": np.array([np.nan, 1.0], np.float32), "d": np.arange(3), "e": "not a tensor"})
    assert entries == ["a (1 NaN, 2 inf of 6)", "c (1 NaN, 0 inf of 2)"] and num_float == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_file_with_non_finite_weights_is_refused_and_the_model_kept(tmp_path, bad):
    weights = torch.full((3, 2, 1, 1), 0.5)
    weights[1, 0] = bad
    path = _save(tmp_path, _state(**{"conv.weight": weights}))
    model = _Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteWeightsError) as e:
        Checkpointer(model).load(path)
    msg = str(e.value)
    assert path in msg and "conv.weight" in msg and "MODEL.ALLOW_NON_FINITE_WEIGHTS" in msg
    assert "norm.weight" not in msg and e.value.entries == [f"conv.weight ({int(bad != bad)} NaN, "
                                                            f"{int(bad == bad)} inf of 6)"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was loaded
    assert pickle.loads(pickle.dumps(e.value)).entries == e.value.entries
    # allowed explicitly (debugging): loaded as it is
    Checkpointer(model, allow_non_finite=True).load(path)
    assert not torch.isfinite(model.conv.weight).all()


def test_non_finite_pkl_arrays_are_refused(tmp_path):
    state = {k: v.numpy() for k, v in _state().items()}
    state["head.bias"] = np.array([1.0, np.nan, np.nan, 0.0], np.float32)
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"model": state, "__author__": "test"}))
    with pytest.raises(NonFiniteWeightsError, match=r"head.bias \(2 NaN"):
        Checkpointer(_Net()).load(str(path))


def test_require_all_names_what_is_missing_or_mismatched(tmp_path):
    state = _state()
    del state["head.weight"], state["head.bias"]
    state["norm.weight"] = torch.ones(5)  # another shape
    state["extra.weight"] = torch.ones(1)  # unused: reported, not an error
    path = _save(tmp_path, state)
    Checkpointer(_Net()).load(path)  # a partial load is fine where nothing requires all weights
    with pytest.raises(IncompleteWeightsError) as e:
        Checkpointer(_Net()).load(path, require_all=True)
    msg = str(e.value)
    num_model = len(_Net().state_dict())
    assert (e.value.num_loaded, e.value.num_model) == (num_model - 3, num_model)
    assert f"Only {num_model - 3} of the model's {num_model} weights were loaded from {path}" in msg
    assert "head.{bias, weight}" in msg and "norm.weight: (5,) in the checkpoint, (3,) in the model" in msg
    assert "extra" not in msg and "MODEL.ALLOW_PARTIAL_WEIGHTS" in msg
    complete = _save(tmp_path, _state(**{"extra.weight": torch.ones(1)}), "complete.pth")
    Checkpointer(_Net()).load(complete, require_all=True)
    with pytest.raises(IncompleteWeightsError, match="No weights were given"):
        Checkpointer(_Net()).load("", require_all=True)


def test_load_inference_weights_follows_the_config(tmp_path, caplog):
    complete = _save(tmp_path, _state())
    model = _Net()
    assert load_inference_weights(model, _cfg(complete)).incompatible_keys.missing_keys == []
    torch.testing.assert_close(model.conv.weight, _state()["conv.weight"])
    with pytest.raises(IncompleteWeightsError, match="MODEL.WEIGHTS is empty"):
        load_inference_weights(_Net(), _cfg(""))
    partial_state = _state()
    del partial_state["conv.bias"]
    partial = _save(tmp_path, partial_state, "partial.pth")
    with pytest.raises(IncompleteWeightsError, match="conv.bias"):
        load_inference_weights(_Net(), _cfg(partial))
    with caplog.at_level("WARNING"):
        load_inference_weights(_Net(), _cfg(partial, allow_partial=True))
        load_inference_weights(_Net(), _cfg("", allow_partial=True))
    assert "1 missing" in caplog.text and "loaded no weights" in caplog.text
    nan = _save(tmp_path, _state(**{"conv.bias": torch.full((3,), float("nan"))}), "nan.pth")
    with pytest.raises(NonFiniteWeightsError):
        load_inference_weights(_Net(), _cfg(nan, allow_partial=True))
    load_inference_weights(_Net(), _cfg(nan, allow_non_finite=True))


def test_eval_only_resume_loads_the_last_checkpoint_completely(tmp_path):
    model = _Net()
    Checkpointer(model, str(tmp_path)).save("model_0000009")
    cfg = _cfg("")  # no MODEL.WEIGHTS: --resume finds OUTPUT_DIR's last checkpoint
    other = _Net()
    load_inference_weights(other, cfg, resume=True, save_dir=str(tmp_path))
    torch.testing.assert_close(other.head.weight, model.head.weight)
    with pytest.raises(IncompleteWeightsError):  # without --resume: no weights
        load_inference_weights(_Net(), cfg, resume=False, save_dir=str(tmp_path))
