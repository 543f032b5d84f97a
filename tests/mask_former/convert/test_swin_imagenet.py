"""mask_former.convert.swin_imagenet: an official Swin ImageNet checkpoint loads by name matching
into a MaskFormer Swin backbone, and nothing of its classifier goes into the head."""
import re

import pytest
import torch

from mask_former.convert import AUTHOR, load_swin_imagenet_state_dict
from segcore.checkpoint import Checkpointer
from segcore.checkpoint.safe_pickle import safe_load
from segcore.convert import write_d2_checkpoint
from tests.mask_former.convert.swin_release import FINAL_DIM, swin_imagenet_state_dict, tiny_swin_maskformer


def test_checkpoint_loads_into_the_backbone(tmp_path, mf_cfg):
    model = tiny_swin_maskformer(mf_cfg)
    model_sd = model.state_dict()
    for name in ("patch_embed.proj.weight", "layers.0.blocks.0.attn.qkv.weight", "layers.0.downsample.reduction.weight"):
        assert "backbone." + name in model_sd
    src_sd = swin_imagenet_state_dict(model_sd)
    torch.save({"model": src_sd}, tmp_path / "swin_tiny_patch4_window7_224.pth")
    state = load_swin_imagenet_state_dict(str(tmp_path / "swin_tiny_patch4_window7_224.pth"))
    out = tmp_path / "swin_tiny_patch4_window7_224.pkl"
    write_d2_checkpoint(state, str(out), author=AUTHOR, matching_heuristics=True)
    with open(out, "rb") as f:
        data = safe_load(f)
    assert data["__author__"] == "third_party" and data["matching_heuristics"] is True
    assert set(data["model"]) == set(src_sd)

    head_before = {k: v.clone() for k, v in model_sd.items() if not k.startswith("backbone.")}
    ck = Checkpointer(model)
    ck.load(str(out))
    new_sd = model.state_dict()
    for k, v in src_sd.items():
        if "backbone." + k in new_sd:
            assert torch.equal(new_sd["backbone." + k], v), k
    for k, v in head_before.items():
        assert torch.equal(new_sd[k], v), k  # nothing from the classifier went into the head
    inc = ck.incompatible_keys
    assert sorted(inc.unexpected_keys) == ["head.bias", "head.weight", "layers.0.blocks.1.attn_mask",
                                           "norm.bias", "norm.weight"]
    missing_backbone = sorted(k for k in inc.missing_keys if k.startswith("backbone."))
    assert missing_backbone == [f"backbone.norm{i}.{p}" for i in range(4) for p in ("bias", "weight")]
    assert all(k.split(".")[0] in ("backbone", "sem_seg_head", "criterion") for k in inc.missing_keys)
    assert all(c != m for m, c in ck.matched_keys.items())
    assert len(ck.matched_keys) == len(src_sd) - 5
    # the classifier norm is a dot-aligned suffix of the head's GroupNorms: other shapes, not loaded
    assert inc.incorrect_shapes and all(
        k.startswith("sem_seg_head.") and re.search(r"\.norm\.(weight|bias)$", k) and shape_ckpt == (FINAL_DIM,)
        for k, shape_ckpt, _ in inc.incorrect_shapes
    )


def test_a_checkpoint_without_a_model_entry(tmp_path):
    torch.save({"state_dict": {"a": torch.zeros(1)}}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth has no 'model' state dict"):
        load_swin_imagenet_state_dict(str(tmp_path / "bad.pth"))
