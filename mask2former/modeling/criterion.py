"""Mask2Former's set criterion: mask losses on importance-sampled points (Sec. 3.3, Sec. 4.1).

The classification loss is MaskFormer's (cross-entropy, no-object class weighted by
``NO_OBJECT_WEIGHT``). The mask losses of a matched pair are computed on K points instead of the
full-resolution mask ("Improving training efficiency", Sec. 3.3): the points are chosen as in
PointRend (Kirillov et al., CVPR 2020): ``OVERSAMPLE_RATIO`` x K uniform candidates, the
``IMPORTANCE_SAMPLE_RATIO`` x K most uncertain of them (logits closest to 0) plus uniformly random
ones; then sigmoid binary cross-entropy and dice on those points, with the weights of Sec. 4.1
(``CLASS_WEIGHT`` 2, ``MASK_WEIGHT`` 5, ``DICE_WEIGHT`` 5 in the Mask2Former configs).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn

from mask_former.modeling.criterion import CRITERION_REGISTRY, SetCriterion, dice_loss
from segcore.config import configurable
from segcore.layers import calculate_uncertainty, get_uncertain_point_coords_with_randomness, point_sample

from .losses import sigmoid_ce_loss
from .matcher import PointSampledHungarianMatcher

__all__ = ["PointSampledSetCriterion"]


@CRITERION_REGISTRY.register("PointSampledSetCriterion")
class PointSampledSetCriterion(SetCriterion):
    """MaskFormer's set criterion with Mask2Former's point-sampled mask losses (Sec. 3.3).

    Matching (:class:`PointSampledHungarianMatcher`), the class loss, the normalizer (number of
    target masks averaged over processes) and deep supervision (one loss set per auxiliary output,
    suffixed ``_{i}``) are :class:`SetCriterion`'s. Only the mask losses differ: for the M matched
    pairs of the batch, ``num_points`` points per pair are chosen by
    :meth:`sample_points` (no gradient), the predicted mask (N, h, w) and the target mask (padded
    batch size H x W) are both read there with :func:`segcore.layers.point_sample` (bilinear,
    ``align_corners=False``, coordinates normalized to each mask's extent), and

    - ``loss_mask``: :func:`mask2former.modeling.losses.sigmoid_ce_loss` (mean over points, sum
      over masks / num_masks);
    - ``loss_dice``: :func:`mask_former.modeling.criterion.dice_loss` on the same points.

    Both are computed in float32 with autocast disabled (the original reads float16 masks with
    float32 points, which autocast promotes to float32).

    Args:
        num_classes, matcher, weight_dict, eos_coef, losses: as :class:`SetCriterion`.
        num_points: K > 0, points per matched mask (``TRAIN_NUM_POINTS``, 12,544 in Sec. 4.1).
        oversample_ratio: >= 1, candidates drawn per point (``OVERSAMPLE_RATIO``, 3).
        importance_sample_ratio: in [0, 1], the fraction of the points chosen by uncertainty
            (``IMPORTANCE_SAMPLE_RATIO``, 0.75).

    ``forward(outputs, targets)``: outputs has ``pred_logits`` (B, N, K+1), ``pred_masks``
    (B, N, h, w) and optionally ``aux_outputs`` (a list of such dicts); targets is a list of B
    dicts with ``labels`` (M_b,) int64 and ``masks`` (M_b, H, W) padded to the batch's padded
    image size (``MaskFormer.prepare_targets``). Returns unweighted scalar losses ``loss_ce``,
    ``loss_mask``, ``loss_dice`` (+ ``_{i}`` per auxiliary output); the mask losses are 0 (and
    still connected to the graph) when the batch has no target.

    Raises:
        KeyError: an unknown loss name. ValueError: ``num_points`` < 1, ``oversample_ratio`` < 1
            or ``importance_sample_ratio`` outside [0, 1].
    """

    matcher_class = PointSampledHungarianMatcher

    @configurable
    def __init__(self, *, num_classes: int, matcher: nn.Module, weight_dict: Dict[str, float], eos_coef: float,
                 losses: Sequence[str], num_points: int, oversample_ratio: float, importance_sample_ratio: float):
        super().__init__(num_classes=num_classes, matcher=matcher, weight_dict=weight_dict, eos_coef=eos_coef,
                         losses=losses)
        if num_points < 1:
            raise ValueError(f"PointSampledSetCriterion: num_points must be >= 1; got {num_points}")
        if not oversample_ratio >= 1:
            raise ValueError(f"PointSampledSetCriterion: oversample_ratio must be >= 1; got {oversample_ratio}")
        if not 0 <= importance_sample_ratio <= 1:
            raise ValueError(
                f"PointSampledSetCriterion: importance_sample_ratio must be in [0, 1]; got {importance_sample_ratio}")
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    @classmethod
    def from_config(cls, cfg, num_classes: int, matcher: nn.Module) -> dict:
        """:class:`SetCriterion`'s arguments plus ``MODEL.MASK_FORMER.TRAIN_NUM_POINTS``,
        ``OVERSAMPLE_RATIO`` and ``IMPORTANCE_SAMPLE_RATIO``."""
        args = super().from_config(cfg, num_classes, matcher)
        mf = cfg.MODEL.MASK_FORMER
        args.update(num_points=mf.TRAIN_NUM_POINTS, oversample_ratio=mf.OVERSAMPLE_RATIO,
                    importance_sample_ratio=mf.IMPORTANCE_SAMPLE_RATIO)
        return args

    def sample_points(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """PointRend's training points for each mask (Sec. 3.1 of PointRend; Mask2Former Sec. 3.3).

        Args:
            mask_logits: (M, 1, h, w) float mask logits.

        Returns:
            (M, num_points, 2) (x, y) coordinates in [0, 1]^2, the importance-sampled ones first;
            no gradient.
        """
        return get_uncertain_point_coords_with_randomness(mask_logits, calculate_uncertainty, self.num_points,
                                                          self.oversample_ratio, self.importance_sample_ratio)

    def mask_losses(self, src_masks: torch.Tensor, target_masks: torch.Tensor,
                    num_masks: float) -> Dict[str, torch.Tensor]:
        """Binary cross-entropy and dice of the (M, h, w) matched mask logits against their (M, H, W)
        targets on :meth:`sample_points`'s points (chosen without gradient), in float32 (Sec. 3.3)."""
        with torch.autocast(device_type=src_masks.device.type, enabled=False):
            src_masks = src_masks.float()[:, None]  # (M, 1, h, w)
            target_masks = target_masks.float()[:, None]  # (M, 1, H, W)
            with torch.no_grad():
                points = self.sample_points(src_masks)
                point_labels = point_sample(target_masks, points, align_corners=False)[:, 0]
            point_logits = point_sample(src_masks, points, align_corners=False)[:, 0]
            return {
                "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
                "loss_dice": dice_loss(point_logits, point_labels, num_masks),
            }

    def __repr__(self) -> str:
        return (f"PointSampledSetCriterion(num_classes={self.num_classes}, matcher={self.matcher!r}, "
                f"losses={self.losses}, weight_dict={self.weight_dict}, eos_coef={self.eos_coef}, "
                f"num_points={self.num_points}, oversample_ratio={self.oversample_ratio}, "
                f"importance_sample_ratio={self.importance_sample_ratio})")
