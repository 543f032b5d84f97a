"""A tiny ResNet-50 and torchvision's names for it (shared by ``tests/segcore/convert`` and the
command-line test ``tests/tools/test_converters.py``)."""
import re

import torch

from segcore.config import get_cfg
from segcore.layers import ShapeSpec
from segcore.modeling.backbone.resnet import build_resnet_backbone


def to_torchvision(d2_name: str) -> str:
    """Detectron2 ResNet name -> torchvision name (the inverse of the converter, written apart)."""
    m = re.match(r"^stem\.conv1\.(weight|norm\.(\w+))$", d2_name)
    if m:
        return "conv1.weight" if m.group(1) == "weight" else f"bn1.{m.group(2)}"
    m = re.match(r"^res(\d)\.(\d+)\.(conv\d|shortcut)\.(weight|norm\.(\w+))$", d2_name)
    assert m, d2_name
    stage, block, layer, _, norm_attr = m.groups()
    prefix = f"layer{int(stage) - 1}.{block}."
    if layer == "shortcut":
        return prefix + ("downsample.0.weight" if norm_attr is None else f"downsample.1.{norm_attr}")
    return prefix + (f"{layer}.weight" if norm_attr is None else f"bn{layer[-1]}.{norm_attr}")


def tiny_r50():
    """A ResNet-50 (3, 4, 6, 3 bottlenecks) with tiny widths, stride in the 3x3 as torchvision's."""
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False  # torchvision puts the stride in the 3x3 conv
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 8
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    return build_resnet_backbone(cfg, ShapeSpec(channels=3))


def torchvision_state_dict(backbone):
    """Random values under torchvision's names for ``backbone``, plus its classifier and a counter."""
    g = torch.Generator().manual_seed(0)
    tv = {to_torchvision(k): torch.randn(v.shape, generator=g) for k, v in backbone.state_dict().items()}
    tv["fc.weight"], tv["fc.bias"] = torch.randn(10, 128), torch.randn(10)
    tv["bn1.num_batches_tracked"] = torch.tensor(5)
    return tv
