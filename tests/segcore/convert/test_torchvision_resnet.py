"""segcore.convert.torchvision_resnet: torchvision's ResNet-50 names into our ResNet, loaded by name
matching as a backbone."""
import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer
from segcore.convert import write_d2_checkpoint
from segcore.convert.torchvision_resnet import (
    AUTHOR,
    convert_torchvision_name,
    convert_torchvision_state_dict,
    load_torchvision_state_dict,
)
from tests.segcore.convert.torchvision_release import tiny_r50, to_torchvision, torchvision_state_dict


@pytest.mark.parametrize("name,ours", [
    ("conv1.weight", "stem.conv1.weight"), ("bn1.running_var", "stem.conv1.norm.running_var"),
    ("layer1.0.downsample.0.weight", "res2.0.shortcut.weight"), ("layer1.0.downsample.1.bias", "res2.0.shortcut.norm.bias"),
    ("layer4.2.bn3.weight", "res5.2.conv3.norm.weight"), ("layer3.5.conv2.weight", "res4.5.conv2.weight"),
])
def test_names(name, ours):
    assert convert_torchvision_name(name) == ours


def test_resnet50_round_trip(tmp_path):
    backbone = tiny_r50()
    tv = torchvision_state_dict(backbone)
    assert tv["conv1.weight"].shape[-2:] == (7, 7)
    torch.save({"state_dict": tv}, tmp_path / "wrapped.pth")  # a training checkpoint's wrapper is unwrapped
    weights = convert_torchvision_state_dict(load_torchvision_state_dict(str(tmp_path / "wrapped.pth")))
    assert set(weights) == set(backbone.state_dict())  # fc and the counter dropped
    write_d2_checkpoint(weights, str(tmp_path / "R-50.pkl"), author=AUTHOR, matching_heuristics=True)

    model = nn.Module()
    model.backbone = tiny_r50()
    model.head = nn.Conv2d(128, 3, 1)
    ck = Checkpointer(model)
    ck.load(str(tmp_path / "R-50.pkl"))
    sd = model.state_dict()
    for k in backbone.state_dict():
        assert torch.equal(sd["backbone." + k], tv[to_torchvision(k)]), k
    assert ck.incompatible_keys.missing_keys == ["head.weight", "head.bias"]
    assert ck.incompatible_keys.unexpected_keys == [] and ck.incompatible_keys.incorrect_shapes == []


def test_what_is_not_a_torchvision_resnet(tmp_path):
    with pytest.raises(ValueError, match="'features.0.weight' is not a torchvision ResNet"):
        convert_torchvision_state_dict({"features.0.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="'layer1.0.conv1.weight' holds a list"):
        convert_torchvision_state_dict({"layer1.0.conv1.weight": [1.0]})
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list, expected a state dict"):
        load_torchvision_state_dict(str(tmp_path / "list.pth"))
