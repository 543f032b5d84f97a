"""Bipartite matching of mask tubes (Mask2Former for VIS, Cheng et al. 2021, Sec. 3; the original
``mask2former_video/modeling/matcher.py``).

Mask2Former's point-sampled matcher (:class:`mask2former.modeling.matcher.PointSampledHungarianMatcher`)
applied to tubes: per clip, K points are drawn uniformly at random once and read in every frame of
every predicted and ground-truth tube, so a query's mask cost is over T x K values (the original
``VideoHungarianMatcher``); the class cost and the Hungarian assignment are the image matcher's.
"""
from __future__ import annotations

from mask2former.modeling.matcher import PointSampledHungarianMatcher

__all__ = ["VideoHungarianMatcher"]


class VideoHungarianMatcher(PointSampledHungarianMatcher):
    """One-to-one assignment of queries to ground-truth instances (tracks) of a clip.

    Arguments and costs as :class:`~mask2former.modeling.matcher.PointSampledHungarianMatcher`
    (``cost_class`` * -p(class) + ``cost_mask`` * sigmoid BCE + ``cost_dice`` * dice, the mask
    costs on ``num_points`` uniform points shared by all T frames of a clip).

    ``forward(outputs, targets)``: outputs has ``pred_logits`` (B, N, K+1) and ``pred_masks``
    (B, N, T, h, w); targets is a list of B dicts with ``labels`` (M_b,) int64 and ``masks``
    (M_b, T, H, W) (a track's frames where it is absent are empty masks), padded to the batch's
    padded size. Returns per clip ``(index_i, index_j)`` int64 tensors of length min(N, M_b).
    """

    def __repr__(self) -> str:
        return (f"VideoHungarianMatcher(cost_class={self.cost_class}, cost_mask={self.cost_mask}, "
                f"cost_dice={self.cost_dice}, num_points={self.num_points})")
