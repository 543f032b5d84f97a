"""Tiny Hugging Face Mask2Former models and the runs the conversion tests compare (shared by
``tests/mask2former/convert`` and the command-line test ``tests/tools/test_convert_hf_mask2former.py``).

Every floating-point weight of the HF model is perturbed, so that a swapped or misplaced tensor
shows; both models run on a real photograph (skimage's astronaut) whose sides are multiples of 32,
so that neither pads.
"""
from __future__ import annotations

import numpy as np
import torch

#: the photograph's size: a multiple of 32, so neither model pads (HF's processor does not pad one
#: image; ours pads to 32). Swin's stages (48x64 ... 6x8) are padded to the window, the last one
#: is smaller than the window.
HEIGHT, WIDTH = 192, 256
NUM_QUERIES, NUM_LABELS, DEC_LAYERS = 10, 5, 4
STAGES = ["stage1", "stage2", "stage3", "stage4"]


def hf_config(backbone: str):
    """A tiny ``Mask2FormerConfig``: a Swin (embed 32, depths 1, 1, 2, 1) or a ResNet-50 layout
    (3, 4, 6, 3 bottlenecks) with tiny widths; 64-wide heads, 10 queries, 5 labels, 4 decoder layers."""
    import transformers

    if backbone == "swin":
        backbone_config = transformers.SwinConfig(embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8],
                                                  window_size=7, drop_path_rate=0.0, out_features=STAGES)
    else:
        backbone_config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[32, 64, 128, 256],
                                                    depths=[3, 4, 6, 3], layer_type="bottleneck", out_features=STAGES)
    return transformers.Mask2FormerConfig(
        backbone_config=backbone_config, feature_size=64, mask_feature_size=64, hidden_dim=64, num_queries=NUM_QUERIES,
        num_labels=NUM_LABELS, decoder_layers=DEC_LAYERS, encoder_layers=2, dim_feedforward=128,
        encoder_feedforward_dim=96, num_attention_heads=4)


def perturbed_hf_model(backbone: str):
    """HF's initialization leaves many tensors constant (zero sampling offsets and biases, unit
    norms, default BatchNorm statistics); every floating-point entry gets noise here, BatchNorm
    variances a random positive value. SwinModel's pooled-output LayerNorm, unused by Mask2Former,
    keeps its initial identity (the converter writes that back)."""
    import transformers

    torch.manual_seed(0)
    model = transformers.Mask2FormerForUniversalSegmentation(hf_config(backbone)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or ".swin.layernorm." in name or name == "criterion.empty_weight":
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.add_(torch.randn(t.shape, generator=g) * 0.1)
    return model


def photo() -> np.ndarray:
    """skimage's astronaut, RGB uint8 (HEIGHT, WIDTH, 3)."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


@torch.no_grad()
def run_hf(model, image: np.ndarray) -> list:
    """[(class logits, mask logits)] of the auxiliary predictions, then the final one."""
    import transformers

    # transformers 5 names the torchvision-free processor apart; 4.x has only this one
    processor_cls = getattr(transformers, "Mask2FormerImageProcessorPil", None) or transformers.Mask2FormerImageProcessor
    processor = processor_cls(do_resize=False)
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    out = model(pixel_values=pixel_values, output_auxiliary_logits=True)
    return [(a["class_queries_logits"], a["masks_queries_logits"]) for a in out.auxiliary_logits] + [
        (out.class_queries_logits, out.masks_queries_logits)]


@torch.no_grad()
def run_ours(model, image: np.ndarray) -> list:
    """The same for our model, normalized and padded by the model itself."""
    images = model.preprocess_image([{"image": torch.from_numpy(image).permute(2, 0, 1).contiguous()}])
    out = model.sem_seg_head(model.backbone(images.tensor))
    return [(a["pred_logits"], a["pred_masks"]) for a in out["aux_outputs"]] + [(out["pred_logits"], out["pred_masks"])]


def max_differences(ours: list, theirs: list) -> tuple:
    """The largest absolute differences of the class logits and of the mask logits."""
    cls = max((a[0] - b[0]).abs().max().item() for a, b in zip(ours, theirs, strict=True))
    masks = max((a[1] - b[1]).abs().max().item() for a, b in zip(ours, theirs, strict=True))
    return cls, masks
