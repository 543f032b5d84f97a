"""mask2former.convert.hf_checkpoint: the files save_pretrained writes, read back; what is not one is an error."""
import json

import pytest
import torch

pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from mask2former.convert.hf_checkpoint import load_hf_checkpoint, read_hf_weight_file  # noqa: E402


def _config(folder, model_type="mask2former"):
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, "num_queries": 7}))


def test_a_folder_with_safetensors_and_a_processor(tmp_path):
    _config(tmp_path)
    safetensors_torch.save_file({"a": torch.ones(2)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5]}))
    state, config, preprocessor = load_hf_checkpoint(str(tmp_path))
    assert torch.equal(state["a"], torch.ones(2))
    assert config.num_queries == 7 and preprocessor == {"image_mean": [0.5, 0.5, 0.5]}


def test_a_sharded_checkpoint_and_a_torch_file(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "pytorch_model-1.bin")
    torch.save({"b": torch.ones(1)}, tmp_path / "pytorch_model-2.bin")
    index = {"weight_map": {"a": "pytorch_model-1.bin", "b": "pytorch_model-2.bin"}}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    assert set(read_hf_weight_file(str(tmp_path / "pytorch_model.bin.index.json"))) == {"a", "b"}
    _config(tmp_path)
    state, _, preprocessor = load_hf_checkpoint(str(tmp_path))
    assert set(state) == {"a", "b"} and preprocessor is None


def test_what_is_not_a_mask2former_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="No Hugging Face checkpoint"):
        load_hf_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="holds none of"):
        load_hf_checkpoint(str(tmp_path))
    torch.save({"a": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="--hf-config"):
        load_hf_checkpoint(str(tmp_path))
    _config(tmp_path, "maskformer")
    with pytest.raises(ValueError, match="'maskformer' model, not 'mask2former'"):
        load_hf_checkpoint(str(tmp_path / "pytorch_model.bin"))
    torch.save([1, 2], tmp_path / "list.bin")
    with pytest.raises(ValueError, match="state dict of tensors"):
        read_hf_weight_file(str(tmp_path / "list.bin"))
