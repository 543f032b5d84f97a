"""Point-wise feature sampling and uncertainty-based point selection (PointRend).

Kirillov et al., "PointRend: Image Segmentation as Rendering", CVPR 2020: Sec. 3.1 (point
selection: reading features at real-valued points by bilinear interpolation) and its training
strategy (over-generate k*N random points, keep the beta*N most uncertain, fill the rest with
uniformly random points). Detectron2 ships these in
``projects/PointRend/point_rend/point_features.py``; Mask2Former's matcher and criterion use them
to compute mask losses on a few thousand points instead of full-resolution masks.

Coordinate convention: a point is (x, y) in [0, 1] x [0, 1], normalized to the feature map's
extent, so (0, 0) is the top-left corner of the top-left pixel and (1, 1) the bottom-right corner
of the bottom-right pixel; the centre of pixel (row i, column j) of an H x W map is
((j + 0.5) / W, (i + 0.5) / H). This is ``grid_sample``'s ``align_corners=False`` convention
after mapping [0, 1] to [-1, 1].
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

__all__ = ["calculate_uncertainty", "get_uncertain_point_coords_with_randomness", "point_sample"]


def point_sample(input: torch.Tensor, point_coords: torch.Tensor, **kwargs) -> torch.Tensor:
    """Read ``input`` at real-valued points (PointRend, Kirillov et al., CVPR 2020, Sec. 3.1).

    A wrapper of :func:`torch.nn.functional.grid_sample` that takes points in [0, 1] x [0, 1]
    (see the module docstring) instead of [-1, 1], and also accepts a flat list of points per
    image. Values between pixel centres are interpolated bilinearly (by default); points outside
    the map read zeros (``padding_mode="zeros"``, grid_sample's default).

    Args:
        input: (N, C, H, W) floating-point feature map on an H x W pixel grid.
        point_coords: (N, P, 2) or (N, Hgrid, Wgrid, 2) point coordinates, (x, y) order, in
            [0, 1] x [0, 1] normalized coordinates. When its dtype differs from ``input``'s, both
            are promoted to the wider one (float32 points keep their precision on a bfloat16 map).
        **kwargs: passed to ``grid_sample`` (``mode``, ``padding_mode``, ``align_corners``);
            ``align_corners`` defaults to False, the convention the coordinates above assume.

    Returns:
        (N, C, P) for (N, P, 2) coordinates, or (N, C, Hgrid, Wgrid) for 4-D ones, on ``input``'s
        device, in the promoted dtype of ``input`` and ``point_coords``. Differentiable with
        respect to ``input`` (and to ``point_coords`` for the bilinear mode).

    Raises:
        ValueError: ``input`` is not 4-D, ``point_coords`` is not 3-D or 4-D with a last
            dimension of 2, or their batch sizes differ.
    """
    if input.dim() != 4:
        raise ValueError(f"point_sample: input must be (N, C, H, W); got shape {tuple(input.shape)}")
    if point_coords.dim() not in (3, 4) or point_coords.shape[-1] != 2:
        raise ValueError(
            "point_sample: point_coords must be (N, P, 2) or (N, Hgrid, Wgrid, 2); "
            f"got shape {tuple(point_coords.shape)}"
        )
    if point_coords.shape[0] != input.shape[0]:
        raise ValueError(
            f"point_sample: input has batch size {input.shape[0]} but point_coords has {point_coords.shape[0]}"
        )
    kwargs.setdefault("align_corners", False)
    flat = point_coords.dim() == 3
    if flat:
        point_coords = point_coords.unsqueeze(2)  # (N, P, 1, 2): a P x 1 grid
    grid = 2.0 * point_coords - 1.0
    if grid.dtype != input.dtype:
        # promote (never round the coordinates to a half-precision input's resolution)
        dtype = torch.promote_types(grid.dtype, input.dtype)
        input, grid = input.to(dtype), grid.to(dtype)
    output = F.grid_sample(input, grid, **kwargs)
    if flat:
        output = output.squeeze(3)
    return output


def calculate_uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty of class-agnostic mask logits: ``-|logits|`` (PointRend's measure, Sec. 3.1).

    A logit of 0 (probability 0.5) is the most uncertain and scores 0, the highest value; the
    farther a logit is from the decision boundary, the lower its score. This is the measure
    Mask2Former's criterion passes to :func:`get_uncertain_point_coords_with_randomness`.

    Args:
        logits: (R, 1, ...) floating-point logits of one (foreground) class per mask, e.g. the
            (R, 1, P) values of R masks at P points.

    Returns:
        a new tensor of the same shape and dtype: the uncertainty scores.

    Raises:
        ValueError: ``logits`` has fewer than 2 dimensions or its second dimension is not 1.
    """
    if logits.dim() < 2 or logits.shape[1] != 1:
        raise ValueError(
            f"calculate_uncertainty: logits must be (R, 1, ...) class-agnostic logits; got shape {tuple(logits.shape)}"
        )
    return -torch.abs(logits)


def get_uncertain_point_coords_with_randomness(
    coarse_logits: torch.Tensor,
    uncertainty_func: Callable[[torch.Tensor], torch.Tensor],
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
) -> torch.Tensor:
    """Choose training points biased to uncertain regions (PointRend, CVPR 2020, Sec. 3.1, training).

    Per mask: draw ``int(num_points * oversample_ratio)`` points uniformly in [0, 1]^2, read the
    logits there with :func:`point_sample` (bilinear), score them with ``uncertainty_func``,
    keep the ``int(importance_sample_ratio * num_points)`` highest-scoring ones (most uncertain
    first), and append uniformly random points to reach ``num_points``. Uncertainty is measured
    on the interpolated point logits, not interpolated from per-pixel uncertainties (a point
    halfway between logits -1 and 1 has logit 0, which is maximally uncertain).

    Random numbers come from torch's global generator on ``coarse_logits``' device, drawn in the
    same order and shapes as Detectron2 (so a seeded run picks the same points). No gradient is
    recorded.

    Args:
        coarse_logits: (N, C, H, W) floating-point logits on an H x W grid (C = 1 for
            class-agnostic masks, as in Mask2Former).
        uncertainty_func: maps (N, C, P) point logits to (N, 1, P) scores, higher meaning more
            uncertain (e.g. :func:`calculate_uncertainty`).
        num_points: P, the number of points per mask (>= 0).
        oversample_ratio: k >= 1; k * P candidate points are drawn.
        importance_sample_ratio: beta in [0, 1], the fraction of the P points chosen by
            uncertainty; the rest are uniform.

    Returns:
        (N, P, 2) coordinates (x, y) in [0, 1] x [0, 1] normalized coordinates (see
        :func:`point_sample`), of torch's default floating dtype, on ``coarse_logits``' device.

    Raises:
        ValueError: ``coarse_logits`` is not 4-D, ``num_points`` is negative,
            ``oversample_ratio`` < 1, ``importance_sample_ratio`` outside [0, 1], or
            ``uncertainty_func`` does not return an (N, 1, k * P) tensor.
    """
    if coarse_logits.dim() != 4:
        raise ValueError(
            "get_uncertain_point_coords_with_randomness: coarse_logits must be (N, C, H, W); "
            f"got shape {tuple(coarse_logits.shape)}"
        )
    if num_points < 0:
        raise ValueError(f"get_uncertain_point_coords_with_randomness: num_points must be >= 0; got {num_points}")
    if not oversample_ratio >= 1:
        raise ValueError(
            f"get_uncertain_point_coords_with_randomness: oversample_ratio must be >= 1; got {oversample_ratio}"
        )
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(
            "get_uncertain_point_coords_with_randomness: importance_sample_ratio must be in [0, 1]; "
            f"got {importance_sample_ratio}"
        )
    num_masks = coarse_logits.shape[0]
    device = coarse_logits.device
    num_sampled = int(num_points * oversample_ratio)
    num_uncertain_points = int(importance_sample_ratio * num_points)
    num_random_points = num_points - num_uncertain_points
    with torch.no_grad():
        candidates = torch.rand(num_masks, num_sampled, 2, device=device)
        point_logits = point_sample(coarse_logits, candidates, align_corners=False)
        uncertainties = uncertainty_func(point_logits)
        expected = (num_masks, 1, num_sampled)
        is_tensor = isinstance(uncertainties, torch.Tensor)
        if not is_tensor or tuple(uncertainties.shape) != expected:
            got = tuple(uncertainties.shape) if is_tensor else type(uncertainties).__name__
            raise ValueError(
                f"get_uncertain_point_coords_with_randomness: uncertainty_func must return an (N, 1, P) = {expected} "
                f"tensor; got {got}"
            )
        idx = torch.topk(uncertainties[:, 0, :], k=num_uncertain_points, dim=1)[1]  # (N, beta*P)
        point_coords = torch.gather(candidates, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
        if num_random_points > 0:
            random_coords = torch.rand(num_masks, num_random_points, 2, device=device)
            point_coords = torch.cat([point_coords, random_coords], dim=1)
    return point_coords
