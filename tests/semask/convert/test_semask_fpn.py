"""semask.convert.semask_fpn: a SeMask-FPN checkpoint with the released model's entries
(``tests/fixtures/semask_fpn_SwinT_keys.txt``) and random values converts to exactly our SeMask-T
FPN's names and shapes and puts each tensor where it belongs."""
import argparse

import pytest
import torch

from segcore.convert import build_model_of_config, check_names_and_shapes
from semask.convert import convert_semask_fpn_state_dict, load_mmseg_state_dict, map_name
from tests.semask.convert.semask_fpn_release import CONFIG, released_state_dict


@pytest.fixture(scope="module")
def model():
    return build_model_of_config(CONFIG)[1]


def test_the_fixture_is_the_released_layout():
    state = released_state_dict()
    assert len(state) == 277
    assert state["decode_head.conv_seg.weight"].shape == (150, 256, 1, 1)
    assert state["decode_head.scale_heads.3.4.conv.weight"].shape == (256, 256, 3, 3)
    assert "backbone.layers.2.semantic_layer.class_injection.0.mlp_cls_q.weight" in state


def test_converted_weights_load_strictly_where_they_belong(model):
    released = released_state_dict()
    converted = convert_semask_fpn_state_dict(released)
    check_names_and_shapes(converted, model.state_dict())
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()
    pairs = {
        "sem_seg_head.res2.0.weight": "decode_head.scale_heads.0.0.conv.weight",
        "sem_seg_head.res3.0.norm.bias": "decode_head.scale_heads.1.0.bn.bias",
        "sem_seg_head.res4.2.weight": "decode_head.scale_heads.2.2.conv.weight",
        "sem_seg_head.res5.4.norm.running_var": "decode_head.scale_heads.3.4.bn.running_var",
        "sem_seg_head.res5.4.norm.num_batches_tracked": "decode_head.scale_heads.3.4.bn.num_batches_tracked",
        "sem_seg_head.predictor.weight": "decode_head.conv_seg.weight",
        "sem_seg_head.predictor.bias": "decode_head.conv_seg.bias",
        "backbone.layers.3.semantic_layer.class_injection.0.mlp_cls_k.weight":
            "backbone.layers.3.semantic_layer.class_injection.0.mlp_cls_k.weight",
        "backbone.norm2.weight": "backbone.norm2.weight",
    }
    for our_name, released_name in pairs.items():
        assert torch.equal(ours[our_name], released[released_name]), our_name
    # the classifier is not, say, a scale-head conv of the same width
    assert not torch.equal(ours["sem_seg_head.predictor.weight"].flatten()[:10],
                           released["decode_head.scale_heads.0.0.conv.weight"].flatten()[:10])


def test_a_model_of_other_classes_does_not_fit():
    converted = convert_semask_fpn_state_dict(released_state_dict())
    _, model = build_model_of_config(CONFIG, ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "19"])
    with pytest.raises(ValueError, match=r"shapes differ: 'sem_seg_head\.predictor\.weight' \(150, 256, 1, 1\)"):
        check_names_and_shapes(converted, model.state_dict())


def test_unmapped_entries_are_refused_by_name():
    released = released_state_dict()
    released["neck.lateral_convs.0.conv.weight"] = torch.zeros(256, 96, 1, 1)
    released["auxiliary_head.conv_seg.weight"] = torch.zeros(150, 256, 1, 1)
    with pytest.raises(ValueError, match=r"2 entries.*auxiliary_head\.conv_seg\.weight.*neck\.lateral_convs"):
        convert_semask_fpn_state_dict(released)
    with pytest.raises(ValueError, match="'backbone.x' holds a str"):
        convert_semask_fpn_state_dict({"backbone.x": "not a tensor"})


def test_files_that_are_not_mmseg_checkpoints(tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save({"backbone.a": torch.zeros(1)}, bare)  # a state dict without mmcv's wrapper
    with pytest.raises(ValueError, match="no 'state_dict'"):
        load_mmseg_state_dict(str(bare))
    with pytest.raises(FileNotFoundError):
        load_mmseg_state_dict(str(tmp_path / "missing.pth"))
    # metadata the safe loader refuses: an object of a class it does not know
    torch.save({"state_dict": {"backbone.a": torch.zeros(1)}, "meta": argparse.Namespace(iter=1)}, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match="--trust-file"):
        load_mmseg_state_dict(str(tmp_path / "meta.pth"))
    assert set(load_mmseg_state_dict(str(tmp_path / "meta.pth"), trust_file=True)) == {"backbone.a"}


def test_name_rules():
    assert map_name("decode_head.scale_heads.1.0.bn.running_mean") == "sem_seg_head.res3.0.norm.running_mean"
    assert map_name("decode_head.scale_heads.0.0.conv.bias") == "sem_seg_head.res2.0.bias"
    assert map_name("backbone.patch_embed.proj.weight") == "backbone.patch_embed.proj.weight"
    assert map_name("decode_head.scale_heads.0.0.gn.weight") is None
    assert map_name("decode_head.loss_decode.weight") is None
