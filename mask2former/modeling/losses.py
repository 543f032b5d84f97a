"""Binary cross-entropy of mask logits read at sampled points (Mask2Former Sec. 3.3).

Mask2Former replaces MaskFormer's focal loss on full-resolution masks with a plain sigmoid
binary cross-entropy evaluated on K sampled points per mask ("Improving training efficiency",
Sec. 3.3; K = 112 x 112 = 12,544 in Sec. 4.1), both in the matching cost (uniform points shared
by every prediction and target of an image) and in the final loss (importance-sampled points per
matched pair). The dice term is unchanged from MaskFormer and is not redefined here: use
:func:`mask_former.modeling.criterion.dice_loss` and :func:`mask_former.modeling.matcher.batch_dice_loss`,
which accept point values as well as flattened pixels.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["batch_sigmoid_ce_loss", "sigmoid_ce_loss"]


def sigmoid_ce_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Sigmoid binary cross-entropy of matched mask pairs: mean over points, sum over masks / ``num_masks``.

    The mask loss of Mask2Former's criterion (Sec. 3.3, Sec. 4.1: weight ``MASK_WEIGHT`` = 5).

    Args:
        inputs: (M, P) floating-point mask logits of M predicted masks at P points.
        targets: (M, P) ground-truth values in [0, 1] at the same points (fractional where a
            point falls between target pixels of different values), same dtype as ``inputs``.
        num_masks: the normalizer (the number of target masks averaged over processes, > 0).

    Returns:
        a scalar tensor of ``inputs``' dtype, differentiable with respect to ``inputs``.

    Raises:
        ValueError: ``inputs`` and ``targets`` differ in shape (from
            :func:`torch.nn.functional.binary_cross_entropy_with_logits`).
    """
    per_point = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return per_point.mean(1).sum() / num_masks


def batch_sigmoid_ce_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise sigmoid binary cross-entropy, averaged over the P points: the mask matching cost.

    Entry (n, m) equals ``sigmoid_ce_loss(inputs[n:n+1], targets[m:m+1], 1)``, computed for all
    pairs at once with two matrix products: the loss of a point is ``softplus(-x)`` where the target
    is 1 and ``softplus(x)`` where it is 0, so the mean over points is linear in the targets.
    Mask2Former's matcher (Sec. 3.3) uses it with weight ``MASK_WEIGHT``.

    Args:
        inputs: (N, P) floating-point mask logits of N predictions at P points (P > 0).
        targets: (M, P) ground-truth values in [0, 1] at the same points, same dtype as ``inputs``.

    Returns:
        (N, M) tensor of ``inputs``' dtype.

    Raises:
        RuntimeError: the numbers of points differ (from the matrix product).
    """
    num_points = inputs.shape[1]
    loss_if_one = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    loss_if_zero = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    pairwise = loss_if_one @ targets.transpose(0, 1) + loss_if_zero @ (1 - targets).transpose(0, 1)
    return pairwise / num_points
