"""The set criterion of mask tubes (Mask2Former for VIS, Cheng et al. 2021, Sec. 3; the original
``mask2former_video/modeling/criterion.py``).

Mask2Former's point-sampled criterion (:class:`mask2former.modeling.criterion.PointSampledSetCriterion`:
cross-entropy with the no-object class down-weighted, deep supervision, one normalizer per
process) with mask losses over tubes: every frame of a matched (prediction, track) pair is one
mask with its own importance-sampled points (PointRend's, drawn per (instance, frame)), and the
binary cross-entropy and dice of the M x T masks are summed and divided by the number of tracks M,
as the original.
"""
from __future__ import annotations

from typing import Dict

import torch

from mask2former.modeling.criterion import PointSampledSetCriterion
from mask_former.modeling.criterion import CRITERION_REGISTRY

from .matcher import VideoHungarianMatcher

__all__ = ["VideoSetCriterion"]


@CRITERION_REGISTRY.register("VideoSetCriterion")
class VideoSetCriterion(PointSampledSetCriterion):
    """The video decoder's loss: :class:`PointSampledSetCriterion` on mask tubes.

    Arguments as :class:`PointSampledSetCriterion` (its matcher: :class:`VideoHungarianMatcher`).

    ``forward(outputs, targets)``: outputs has ``pred_logits`` (B, N, K+1), ``pred_masks``
    (B, N, T, h, w) and optionally ``aux_outputs``; targets is a list of B dicts with ``labels``
    (M_b,) int64 and ``masks`` (M_b, T, H, W) padded to the batch's padded size
    (:meth:`mask2former_video.VideoMaskFormer.prepare_targets`). Returns the unweighted scalar
    losses ``loss_ce``, ``loss_mask``, ``loss_dice`` (+ ``_{i}`` per auxiliary output).
    """

    matcher_class = VideoHungarianMatcher

    def mask_losses(self, src_masks: torch.Tensor, target_masks: torch.Tensor,
                    num_masks: float) -> Dict[str, torch.Tensor]:
        """The (M, T, h, w) matched tubes against their (M, T, H, W) targets: each of the M x T frames
        a mask of the image criterion (its own sampled points), normalized by ``num_masks`` tracks."""
        return super().mask_losses(src_masks.flatten(0, 1), target_masks.flatten(0, 1), num_masks)

    def __repr__(self) -> str:
        return "Video" + super().__repr__()
