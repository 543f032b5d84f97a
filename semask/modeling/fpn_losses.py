"""The per-pixel losses of SeMask-FPN, with mmsegmentation 0.x's conventions.

The SeMask-FPN release trains with mmseg 0.11's ``CrossEntropyLoss`` (``SeMask-FPN/mmseg/models/
losses/cross_entropy_loss.py``): logits bilinearly upsampled to the label size
(``align_corners=False``), per-pixel cross-entropy with ignored pixels contributing 0, and the
**mean over all pixels**, ignored and padded ones included (not over the labeled pixels only, as
``F.cross_entropy(ignore_index=...)`` and this project's other per-pixel losses do). Its
``OHEMPixelSampler`` (``mmseg/core/seg/sampler/ohem_pixel_sampler.py``, without a probability
threshold) keeps the hardest labeled pixels of the segmentation loss: :func:`ohem_pixel_weights`.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["ohem_pixel_weights", "per_pixel_cross_entropy_map", "upsampled_cross_entropy"]


def per_pixel_cross_entropy_map(logits: torch.Tensor, targets: torch.Tensor, ignore_value: int) -> torch.Tensor:
    """Per-pixel cross-entropy of logits upsampled to the targets' size.

    Args:
        logits: (B, K, h, w) float class logits at any stride; upsampled bilinearly
            (``align_corners=False``) to (H, W) and computed in float32.
        targets: int64 (B, H, W) class ids in [0, K) or ``ignore_value``.
        ignore_value: the label that does not count (its pixels get 0).

    Returns:
        float32 (B, H, W).

    Raises:
        ValueError: the batch sizes differ or ``targets`` is not 3-D.
    """
    if targets.dim() != 3 or logits.dim() != 4 or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"per_pixel_cross_entropy_map: logits {tuple(logits.shape)} (B, K, h, w) and targets "
                         f"{tuple(targets.shape)} (B, H, W) do not agree")
    logits = F.interpolate(logits.float(), size=targets.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, targets, ignore_index=ignore_value, reduction="none")


def ohem_pixel_weights(pixel_losses: torch.Tensor, targets: torch.Tensor, ignore_value: int,
                       min_kept: int) -> torch.Tensor:
    """Online hard example mining: weight 1 for the hardest labeled pixels, 0 elsewhere.

    The ``min_kept * B`` labeled pixels of the batch with the largest loss are kept (all of them
    when fewer are labeled), as the release's sampler without a threshold. No gradient flows
    through the selection.

    Args:
        pixel_losses: float (B, H, W) per-pixel losses.
        targets: int64 (B, H, W) labels; pixels equal to ``ignore_value`` are never kept.
        ignore_value: the ignored label.
        min_kept: pixels kept per image (100000 in the released configs that use it).

    Returns:
        float (B, H, W) weights in {0, 1}.

    Raises:
        ValueError: ``min_kept`` < 1, or the shapes differ.
    """
    if min_kept < 1:
        raise ValueError(f"ohem_pixel_weights: min_kept must be >= 1, got {min_kept}")
    if pixel_losses.shape != targets.shape:
        raise ValueError(f"ohem_pixel_weights: losses {tuple(pixel_losses.shape)} and targets "
                         f"{tuple(targets.shape)} differ")
    with torch.no_grad():
        labeled = targets != ignore_value
        candidates = pixel_losses.detach().masked_fill(~labeled, float("-inf")).flatten()
        num_kept = min(min_kept * targets.shape[0], int(labeled.sum()))
        weights = torch.zeros_like(candidates)
        if num_kept > 0:
            weights[candidates.topk(num_kept).indices] = 1.0
        return weights.view_as(pixel_losses)


def upsampled_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_value: int,
                            ohem_min_kept: Optional[int] = None) -> torch.Tensor:
    """mmseg 0.x's cross-entropy loss of (low-resolution) logits against full-size labels.

    Args:
        logits, targets, ignore_value: see :func:`per_pixel_cross_entropy_map`.
        ohem_min_kept: with a value, only the hardest ``ohem_min_kept`` labeled pixels per image
            count (:func:`ohem_pixel_weights`); None: every pixel.

    Returns:
        a float32 scalar: the sum of the (kept) labeled pixels' losses divided by the number of
        **all** pixels B * H * W; 0 (connected to the graph) when no pixel is labeled.
    """
    pixel_losses = per_pixel_cross_entropy_map(logits, targets, ignore_value)
    if ohem_min_kept is not None:
        pixel_losses = pixel_losses * ohem_pixel_weights(pixel_losses, targets, ignore_value, ohem_min_kept)
    return pixel_losses.mean()
