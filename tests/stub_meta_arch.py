"""A tiny meta-architecture for testing the demo and tools without a real model.

``StubConvSegmentor`` is registered in ``META_ARCH_REGISTRY``: one 3x3 convolution with fixed
weights from the normalized image to ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` channels, whose softmax
(resized to the requested output size) is returned as ``sem_seg``. Its output is a deterministic
function of the image.
"""
from __future__ import annotations

import os
from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from segcore.modeling import META_ARCH_REGISTRY

STUB_META_ARCH = "StubConvSegmentor"
_WEIGHT_SEED = 1234


@META_ARCH_REGISTRY.register()
class StubConvSegmentor(nn.Module):
    """Conv3x3 -> softmax semantic segmentation; the test-only model of the demo and tools tests."""

    def __init__(self, cfg):
        super().__init__()
        num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
        self.conv = nn.Conv2d(3, num_classes, kernel_size=3, padding=1)
        g = torch.Generator().manual_seed(_WEIGHT_SEED)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(self.conv.bias.shape, generator=g))
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[dict]) -> List[dict]:
        results = []
        for x in batched_inputs:
            image = (x["image"].to(self.device).float() - self.pixel_mean) / self.pixel_std
            logits = self.conv(image[None])
            h, w = x.get("height", image.shape[-2]), x.get("width", image.shape[-1])
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0]
            results.append({"sem_seg": logits.softmax(dim=0)})
        return results


def write_stub_config(folder, num_classes: int = 4, min_size_test: int = 32) -> str:
    """Write a YAML config selecting the stub model on the CPU; returns its path."""
    path = os.path.join(str(folder), "stub.yaml")
    with open(path, "w") as f:
        f.write(
            "MODEL:\n"
            f"  META_ARCHITECTURE: {STUB_META_ARCH}\n"
            "  DEVICE: cpu\n"
            "  ALLOW_PARTIAL_WEIGHTS: True\n"  # no weight file: its weights are fixed by construction
            "  PIXEL_MEAN: [128.0, 128.0, 128.0]\n"
            "  PIXEL_STD: [64.0, 64.0, 64.0]\n"
            "  SEM_SEG_HEAD:\n"
            f"    NUM_CLASSES: {num_classes}\n"
            "INPUT:\n"
            f"  MIN_SIZE_TEST: {min_size_test}\n"
            f"  MAX_SIZE_TEST: {min_size_test * 2}\n"
            "DATASETS:\n"
            "  TEST: []\n"
        )
    return path
