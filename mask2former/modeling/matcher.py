"""Bipartite matching on sampled points (Mask2Former Sec. 3.3, "Improving training efficiency").

MaskFormer's matcher compares every query's mask with every ground-truth mask on all pixels.
Mask2Former compares them on K points drawn uniformly at random per image and shared by all
predictions and targets of that image (K = ``TRAIN_NUM_POINTS`` = 112 x 112, Sec. 4.1), with the
cost ``CLASS_WEIGHT * (-p_i(c_j)) + MASK_WEIGHT * bce(m_i, m_j) + DICE_WEIGHT * dice(m_i, m_j)``
(binary cross-entropy instead of MaskFormer's focal loss). The assignment is the Hungarian one of
:class:`mask_former.modeling.matcher.HungarianMatcher`, which this module subclasses.
"""
from __future__ import annotations

import torch

from mask_former.modeling.matcher import HungarianMatcher, batch_dice_loss
from segcore.config import configurable
from segcore.layers import point_sample

from .losses import batch_sigmoid_ce_loss

__all__ = ["PointSampledHungarianMatcher"]


class PointSampledHungarianMatcher(HungarianMatcher):
    """One-to-one assignment of queries to ground-truth segments, with mask costs on sampled points.

    Mask2Former's matcher (Sec. 3.3; weights and K from Sec. 4.1). Per image, ``num_points``
    points are drawn uniformly in [0, 1]^2 (torch's global generator, on the predictions' device)
    in the coordinates of :func:`segcore.layers.point_sample`: normalized to each mask's extent,
    so a prediction at 1/4 resolution and its target at full (padded) resolution are read at the
    same image positions. Predictions are read bilinearly, targets bilinearly as well (fractional
    values on mask borders), both with ``align_corners=False``. The costs are computed in float32
    with autocast disabled, whatever the input dtype.

    Args:
        cost_class: weight of the classification cost (-softmax probability of the target class).
        cost_mask: weight of the sigmoid binary cross-entropy cost (:func:`batch_sigmoid_ce_loss`).
        cost_dice: weight of the dice cost (:func:`batch_dice_loss`).
        num_points: K > 0, the number of points per image.

    ``forward(outputs, targets)`` is :class:`HungarianMatcher`'s: outputs has ``pred_logits``
    (B, N, K+1) and ``pred_masks`` (B, N, h, w); targets is a list of B dicts with ``labels``
    (M_b,) int64 and ``masks`` (M_b, H, W) (bool or float), the masks of a batch padded to the
    batch's padded image size (as ``MaskFormer.prepare_targets`` returns them). Returns per image
    ``(index_i, index_j)`` int64 tensors of length min(N, M_b).

    Raises:
        ValueError: all costs are zero, or ``num_points`` < 1.
    """

    @configurable
    def __init__(self, *, cost_class: float = 1, cost_mask: float = 1, cost_dice: float = 1, num_points: int):
        super().__init__(cost_class=cost_class, cost_mask=cost_mask, cost_dice=cost_dice)
        if num_points < 1:
            raise ValueError(f"PointSampledHungarianMatcher: num_points must be >= 1; got {num_points}")
        self.num_points = num_points

    @classmethod
    def from_config(cls, cfg) -> dict:
        """MaskFormer's costs (``MODEL.MASK_FORMER.{CLASS,MASK,DICE}_WEIGHT``) and
        ``num_points = MODEL.MASK_FORMER.TRAIN_NUM_POINTS``."""
        args = super().from_config(cfg)
        args["num_points"] = cfg.MODEL.MASK_FORMER.TRAIN_NUM_POINTS
        return args

    def sample_points(self, device: torch.device) -> torch.Tensor:
        """The points of one image: (1, num_points, 2) (x, y) uniform in [0, 1)^2, of torch's default
        floating dtype, on ``device`` (torch's global generator)."""
        return torch.rand(1, self.num_points, 2, device=device)

    @torch.no_grad()
    def cost_matrix(self, pred_logits: torch.Tensor, pred_masks: torch.Tensor, tgt_ids: torch.Tensor,
                    tgt_masks: torch.Tensor) -> torch.Tensor:
        """The (N, M) float32 matching cost of one image, mask costs on :meth:`sample_points`.

        Args:
            pred_logits: (N, K+1) class logits. pred_masks: (N, h, w) mask logits, or (N, T, h, w)
                mask tubes (video: the same points are read in every frame of a tube, as the
                original ``VideoHungarianMatcher``; a tube's costs are over its T x K values).
            tgt_ids: (M,) int64 class indices. tgt_masks: (M, H, W) bool or float masks ((M, T, H, W)
                with tubes).
        """
        with torch.autocast(device_type=pred_masks.device.type, enabled=False):
            cost_class = -pred_logits.float().softmax(-1)[:, tgt_ids]
            points = self.sample_points(pred_masks.device)
            # the masks (every frame of every tube) of one image as channels of one map: every
            # mask is read at the same points
            out_points = point_sample(pred_masks.float().flatten(0, -3)[None], points, align_corners=False)[0]
            tgt_points = point_sample(tgt_masks.to(device=pred_masks.device, dtype=torch.float32).flatten(0, -3)[None],
                                      points, align_corners=False)[0]
            out_points = out_points.reshape(pred_masks.shape[0], -1)
            tgt_points = tgt_points.reshape(tgt_masks.shape[0], -1)
            cost_mask = batch_sigmoid_ce_loss(out_points, tgt_points)
            cost_dice = batch_dice_loss(out_points, tgt_points)
            return self.cost_mask * cost_mask + self.cost_class * cost_class + self.cost_dice * cost_dice

    def __repr__(self) -> str:
        return (f"PointSampledHungarianMatcher(cost_class={self.cost_class}, cost_mask={self.cost_mask}, "
                f"cost_dice={self.cost_dice}, num_points={self.num_points})")
