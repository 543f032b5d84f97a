"""segcore.convert.d2_checkpoint and model_check: what converters write, and the check against a model."""
import numpy as np
import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer
from segcore.checkpoint.safe_pickle import safe_load
from segcore.convert import check_names_and_shapes, d2_checkpoint_content, write_d2_checkpoint


def _weights():
    return {"conv.weight": torch.arange(6.0).reshape(1, 2, 3).transpose(1, 2), "conv.bias": torch.ones(1)}


def test_pkl_holds_arrays_and_pth_tensors(tmp_path):
    content = write_d2_checkpoint(_weights(), str(tmp_path / "a.pkl"), author="test", matching_heuristics=False)
    with open(tmp_path / "a.pkl", "rb") as f:
        data = safe_load(f)
    assert data["__author__"] == "test" and data["matching_heuristics"] is False
    assert list(data["model"]) == ["conv.weight", "conv.bias"]  # the input's order
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())
    np.testing.assert_array_equal(data["model"]["conv.weight"], _weights()["conv.weight"].numpy())
    assert content["model"].keys() == data["model"].keys()

    write_d2_checkpoint(_weights(), str(tmp_path / "a.pth"), author="test", matching_heuristics=True)
    data = torch.load(tmp_path / "a.pth", weights_only=True)
    assert data["matching_heuristics"] is True and data["model"]["conv.weight"].is_contiguous()
    assert torch.equal(data["model"]["conv.weight"], _weights()["conv.weight"])


def test_a_written_file_loads_into_its_model(tmp_path):
    model = nn.Module()
    model.conv = nn.Conv1d(3, 1, 2)
    weights = {k: torch.randn(v.shape) for k, v in model.state_dict().items()}
    write_d2_checkpoint(weights, str(tmp_path / "m.pkl"), author="test", matching_heuristics=False)
    Checkpointer(model).load(str(tmp_path / "m.pkl"), strict=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_what_cannot_be_written(tmp_path):
    with pytest.raises(ValueError, match=r"out\.bin: use a \.pkl .* or \.pth"):
        write_d2_checkpoint(_weights(), str(tmp_path / "out.bin"), author="test", matching_heuristics=False)
    with pytest.raises(ValueError, match="'meta' holds a dict, expected a tensor"):
        write_d2_checkpoint({"meta": {}}, str(tmp_path / "out.pkl"), author="test", matching_heuristics=False)
    assert list(tmp_path.iterdir()) == []  # nothing, not even a partial file
    assert d2_checkpoint_content({}, author="a", matching_heuristics=True, numpy=True) == {
        "model": {}, "__author__": "a", "matching_heuristics": True}


def test_check_names_and_shapes():
    model = {"a": torch.zeros(2, 3), "b": torch.zeros(1), "c": torch.zeros(4)}
    check_names_and_shapes({"a": torch.ones(2, 3), "b": torch.ones(1), "c": torch.ones(4)}, model)
    converted = {"a": torch.ones(3, 3), "b": torch.ones(1), "d": torch.ones(1)}
    with pytest.raises(ValueError) as error:
        check_names_and_shapes(converted, model, sources={"a": ["hf.a"], "d": []})
    lines = str(error.value).splitlines()
    assert lines[1:] == ["  shapes differ: 'a' (3, 3) (from ['hf.a']) but the model has (2, 3)",
                         "  not in the converted weights: c", "  not in the model: d (from computed)"]
