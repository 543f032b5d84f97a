"""ResNet backbones with Detectron2's module and state-dict names.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016); the layout and names
follow Detectron2's ``detectron2/modeling/backbone/resnet.py`` (``stem.conv1``, ``res2.0.conv1``,
``res2.0.conv1.norm``, ``res2.0.shortcut``) so Detectron2 / MaskFormer checkpoints load as they
are. The DeepLab stem (three 3x3 convs) and the res5 multi-grid dilations are those of
DeepLabV3 (Chen et al., 2017, Sec. 3.2), used by the "R101c" MaskFormer models through
``build_resnet_deeplab_backbone`` (the name Detectron2's ``projects/DeepLab`` registers).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from segcore.layers import Conv2d, FrozenBatchNorm2d, ShapeSpec, c2_msra_fill, get_norm

from .backbone import Backbone
from .build import BACKBONE_REGISTRY

__all__ = ["BasicBlock", "BottleneckBlock", "BasicStem", "DeepLabStem", "ResNet", "build_resnet_backbone",
           "build_resnet_deeplab_backbone"]


class CNNBlockBase(nn.Module):
    """A block with known ``in_channels``, ``out_channels`` and ``stride`` that can be frozen."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def freeze(self) -> "CNNBlockBase":
        """Stop gradients to all parameters and turn BatchNorms into FrozenBatchNorm2d."""
        for p in self.parameters():
            p.requires_grad = False
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        return self


def _shortcut(in_channels: int, out_channels: int, stride: int, norm: str) -> Optional[Conv2d]:
    if in_channels == out_channels:
        return None
    return Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False,
                  norm=get_norm(norm, out_channels))


class BasicBlock(CNNBlockBase):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm: str = "BN"):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
                            norm=get_norm(norm, out_channels))
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False,
                            norm=get_norm(norm, out_channels))
        for layer in [self.conv1, self.conv2, self.shortcut]:
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = self.conv2(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out + shortcut)


class BottleneckBlock(CNNBlockBase):
    """1x1 → 3x3 → 1x1 bottleneck with a residual connection (ResNet-50/101/152).

    Args:
        bottleneck_channels: width of the 3x3 conv.
        stride: 2 in the first block of res3..res5; placed in the 1x1 conv if ``stride_in_1x1``
            (MSRA weights) else in the 3x3 conv (torchvision weights).
        num_groups: groups of the 3x3 conv (ResNeXt).
        dilation: dilation of the 3x3 conv (pixels).
    """

    def __init__(self, in_channels: int, out_channels: int, *, bottleneck_channels: int, stride: int = 1,
                 num_groups: int = 1, norm: str = "BN", stride_in_1x1: bool = False, dilation: int = 1):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(in_channels, bottleneck_channels, 1, stride=stride_1x1, bias=False,
                            norm=get_norm(norm, bottleneck_channels))
        self.conv2 = Conv2d(bottleneck_channels, bottleneck_channels, 3, stride=stride_3x3, padding=dilation,
                            bias=False, groups=num_groups, dilation=dilation,
                            norm=get_norm(norm, bottleneck_channels))
        self.conv3 = Conv2d(bottleneck_channels, out_channels, 1, bias=False, norm=get_norm(norm, out_channels))
        for layer in [self.conv1, self.conv2, self.conv3, self.shortcut]:
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out + shortcut)


class BasicStem(CNNBlockBase):
    """7x7 stride-2 conv + 3x3 stride-2 max pool: output stride 4."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm: str = "BN"):
        super().__init__(in_channels, out_channels, 4)
        self.conv1 = Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False,
                            norm=get_norm(norm, out_channels))
        c2_msra_fill(self.conv1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class DeepLabStem(CNNBlockBase):
    """Three 3x3 convs (the first with stride 2) + 3x3 stride-2 max pool: output stride 4.

    Widths are ``out_channels // 2``, ``out_channels // 2``, ``out_channels`` (DeepLab's R101c stem).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 128, norm: str = "BN"):
        super().__init__(in_channels, out_channels, 4)
        half = out_channels // 2
        self.conv1 = Conv2d(in_channels, half, 3, stride=2, padding=1, bias=False, norm=get_norm(norm, half))
        self.conv2 = Conv2d(half, half, 3, stride=1, padding=1, bias=False, norm=get_norm(norm, half))
        self.conv3 = Conv2d(half, out_channels, 3, stride=1, padding=1, bias=False, norm=get_norm(norm, out_channels))
        for layer in [self.conv1, self.conv2, self.conv3]:
            c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        x = F.relu_(self.conv2(x))
        x = F.relu_(self.conv3(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ResNet(Backbone):
    """A stem followed by stages of blocks; outputs ``stem``, ``res2``..``res5`` as requested.

    Args:
        stem: a stem module with ``out_channels`` and ``stride``.
        stages: lists of blocks; stage i is named ``res{i + 2}``.
        out_features: names of the outputs to return (subset of "stem", "res2".."res5").
        freeze_at: freeze the stem (1) and the first ``freeze_at - 1`` stages (0 = none).

    ``forward(x)`` takes (N, C, H, W) float images and returns {name: (N, C_name, H / s, W / s)}
    with s the stride of that output (ceil division for odd sizes).

    Raises:
        ValueError: an unknown output name.
    """

    def __init__(self, stem: nn.Module, stages: List[List[CNNBlockBase]], out_features: Sequence[str],
                 freeze_at: int = 0):
        super().__init__()
        self.stem = stem
        current_stride = stem.stride
        self._out_feature_strides = {"stem": current_stride}
        self._out_feature_channels = {"stem": stem.out_channels}
        self.stage_names = []
        self.stages = []
        valid = {"stem"} | {f"res{i + 2}" for i in range(len(stages))}
        unknown = [f for f in out_features if f not in valid]
        if unknown:
            raise ValueError(f"Unknown ResNet output(s) {unknown}; available: {sorted(valid)}")
        num_stages = max(int(f[3:]) - 1 if f != "stem" else 0 for f in out_features)
        stages = stages[:num_stages]
        for i, blocks in enumerate(stages):
            name = f"res{i + 2}"
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stages.append(stage)
            current_stride *= int(torch.prod(torch.tensor([b.stride for b in blocks])).item())
            self._out_feature_strides[name] = current_stride
            self._out_feature_channels[name] = blocks[-1].out_channels
        self._out_features = tuple(out_features)
        self.freeze(freeze_at)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"ResNet takes (N, C, H, W) inputs; got shape {tuple(x.shape)}")
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs

    def freeze(self, freeze_at: int = 0) -> "ResNet":
        """Freeze the stem when ``freeze_at >= 1`` and stage k (res{k+1}) when ``freeze_at >= k``."""
        if freeze_at >= 1:
            self.stem.freeze()
        for idx, stage in enumerate(self.stages, start=2):
            if freeze_at >= idx:
                for block in stage.children():
                    block.freeze()
        return self


_DEPTH_TO_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}
_STEMS = {"basic": BasicStem, "deeplab": DeepLabStem}


def _check_resnet_config(r) -> None:
    """Checks shared by the ResNet builders (``r`` is ``cfg.MODEL.RESNETS``)."""
    if r.DEPTH not in _DEPTH_TO_BLOCKS:
        raise ValueError(f"MODEL.RESNETS.DEPTH={r.DEPTH} is not supported; use one of {sorted(_DEPTH_TO_BLOCKS)}")
    if any(r.DEFORM_ON_PER_STAGE):
        raise ValueError("Deformable convolutions (MODEL.RESNETS.DEFORM_ON_PER_STAGE) are not supported")


def _build_resnet(cfg, input_shape: ShapeSpec, stem_type: str, res5_dilation_per_block: Sequence[int]) -> ResNet:
    """The ResNet of ``cfg.MODEL.RESNETS`` with the given stem and dilation of each res5 block.

    Block dilations: res2/res3 1, res4 ``RES4_DILATION``, res5 ``res5_dilation_per_block``; res4
    (res5) keeps its input stride (its first block has stride 1) when RES4_DILATION
    (RES5_DILATION) is > 1.
    """
    r = cfg.MODEL.RESNETS
    depth = r.DEPTH
    norm = r.NORM
    stem = _STEMS[stem_type](in_channels=input_shape.channels, out_channels=r.STEM_OUT_CHANNELS, norm=norm)
    num_blocks = _DEPTH_TO_BLOCKS[depth]
    bottleneck_channels = r.NUM_GROUPS * r.WIDTH_PER_GROUP
    in_channels = r.STEM_OUT_CHANNELS
    out_channels = r.RES2_OUT_CHANNELS
    stages = []
    for idx, stage_idx in enumerate(range(2, 6)):
        stage_dilation = {4: r.RES4_DILATION, 5: r.RES5_DILATION}.get(stage_idx, 1)
        first_stride = 1 if idx == 0 or stage_dilation > 1 else 2
        if stage_idx == 5:
            block_dilations = list(res5_dilation_per_block)
        else:
            block_dilations = [stage_dilation] * num_blocks[idx]
        blocks = []
        for b in range(num_blocks[idx]):
            stride = first_stride if b == 0 else 1
            if depth in (18, 34):
                block = BasicBlock(in_channels, out_channels, stride=stride, norm=norm)
            else:
                block = BottleneckBlock(in_channels, out_channels, bottleneck_channels=bottleneck_channels,
                                        stride=stride, num_groups=r.NUM_GROUPS, norm=norm,
                                        stride_in_1x1=r.STRIDE_IN_1X1, dilation=block_dilations[b])
            blocks.append(block)
            in_channels = out_channels
        stages.append(blocks)
        out_channels *= 2
        bottleneck_channels *= 2
    return ResNet(stem, stages, out_features=r.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """Build a ResNet from ``cfg.MODEL.RESNETS`` (Detectron2's builder, exactly).

    Keys: DEPTH (18, 34, 50, 101, 152), NORM, STEM_OUT_CHANNELS, RES2_OUT_CHANNELS, NUM_GROUPS,
    WIDTH_PER_GROUP, STRIDE_IN_1X1, RES4_DILATION, RES5_DILATION (1 or 2), OUT_FEATURES;
    ``MODEL.BACKBONE.FREEZE_AT``. The stem is the basic one (a 7x7 conv) and every res5 block has
    dilation RES5_DILATION: the DeepLab keys STEM_TYPE and RES5_MULTI_GRID are read only by
    :func:`build_resnet_deeplab_backbone`, as in Detectron2.

    Raises:
        ValueError: unsupported depth or dilation, or deformable convolutions requested.
    """
    r = cfg.MODEL.RESNETS
    _check_resnet_config(r)
    if r.RES5_DILATION not in (1, 2):
        raise ValueError(f"MODEL.RESNETS.RES5_DILATION must be 1 or 2, got {r.RES5_DILATION}")
    if r.DEPTH in (18, 34):
        if r.RES2_OUT_CHANNELS != 64:
            raise ValueError("MODEL.RESNETS.RES2_OUT_CHANNELS must be 64 for ResNet-18/34")
        if r.RES5_DILATION != 1 or r.NUM_GROUPS != 1:
            raise ValueError("ResNet-18/34 support neither dilation nor groups")
    n5 = _DEPTH_TO_BLOCKS[r.DEPTH][3]
    return _build_resnet(cfg, input_shape, "basic", [r.RES5_DILATION] * n5)


@BACKBONE_REGISTRY.register()
def build_resnet_deeplab_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """Build the DeepLab ResNet of ``cfg.MODEL.RESNETS`` (Detectron2's ``projects/DeepLab``
    builder, named by the original "R101c" configs).

    The same network as :func:`build_resnet_backbone`, with DeepLab's rules: the stem is chosen by
    STEM_TYPE ("deeplab": three 3x3 convs, "basic": one 7x7 conv); res4 is dilated by RES4_DILATION
    (1 or 2) and block i of res5 by ``RES5_DILATION * RES5_MULTI_GRID[i]`` (multi-grid, Chen et al.
    2017, Sec. 3.2), RES5_DILATION being 1, 2 or 4, and 4 when res4 is dilated. Output stride:
    32 without dilation, 16 with RES5_DILATION 2, 8 with RES4_DILATION 2.

    Raises:
        ValueError: a depth other than 50 / 101 / 152, an unknown stem type, a dilation outside
            those above, RES5_MULTI_GRID not giving one multiplier per res5 block, or
            deformable convolutions requested.
    """
    r = cfg.MODEL.RESNETS
    _check_resnet_config(r)
    if r.STEM_TYPE not in _STEMS:
        raise ValueError(f"MODEL.RESNETS.STEM_TYPE='{r.STEM_TYPE}' is not supported; use one of {sorted(_STEMS)}")
    if r.DEPTH in (18, 34):
        raise ValueError("build_resnet_deeplab_backbone builds ResNet-50/101/152 only; "
                         f"got MODEL.RESNETS.DEPTH={r.DEPTH}")
    if r.RES4_DILATION not in (1, 2):
        raise ValueError(f"MODEL.RESNETS.RES4_DILATION must be 1 or 2, got {r.RES4_DILATION}")
    if r.RES5_DILATION not in (1, 2, 4):
        raise ValueError(f"MODEL.RESNETS.RES5_DILATION must be 1, 2 or 4, got {r.RES5_DILATION}")
    if r.RES4_DILATION == 2 and r.RES5_DILATION != 4:
        raise ValueError(f"MODEL.RESNETS.RES5_DILATION must be 4 when RES4_DILATION is 2, got {r.RES5_DILATION}")
    n5 = _DEPTH_TO_BLOCKS[r.DEPTH][3]
    if len(r.RES5_MULTI_GRID) != n5:
        raise ValueError(f"MODEL.RESNETS.RES5_MULTI_GRID must give one multiplier per res5 block ({n5}), "
                         f"got {list(r.RES5_MULTI_GRID)}")
    return _build_resnet(cfg, input_shape, r.STEM_TYPE, [r.RES5_DILATION * m for m in r.RES5_MULTI_GRID])
