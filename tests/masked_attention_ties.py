"""Masked-attention decisions at a tie, for the parity tests of the Mask2Former decoders.

Masked attention (Mask2Former, Sec. 3.2.1, Eq. 2) lets a query attend where its previous mask logit
is >= 0: a discrete decision per (query, position, layer). When a logit lies within float rounding
of 0, the decision can go either way, on one CPU as on another (the rounding of matrix products and
of torch.randn's weights changes with the vector instructions: AVX-512, AVX2, SSE), and the query's
later outputs then differ by far more than the rounding. Such a query is a tie.

The rule that holds on any CPU: a query is a tie when some logit it is judged by lies within
:data:`TIE_MARGIN` of 0. The margin is 50 times the measured difference of those logits between CPUs
and implementations (about 2e-6: the original on 1 and 2 threads, ours with the instruction sets
lowered), so a query outside it takes the same branch everywhere. The tests compare tie queries
loosely and every other query strictly; which queries fall just inside or outside the margin may
change with the CPU, but a query near the margin is far from flipping, so both comparisons hold
for it and the verdict does not change. Nothing counts how many queries flipped.
"""
from __future__ import annotations

from typing import Any, Callable, List, Tuple

import torch
from torch.nn import functional as F

#: a masked-attention decision whose mask logit is closer to 0 than this is a tie
TIE_MARGIN = 1e-4


def decision_margins(run: Callable[[], Any]) -> Tuple[Any, torch.Tensor]:
    """Run ``run()`` while watching every masked-attention decision of the first image.

    Returns:
        ``(run's result, margins)``: float (Q,), per query the smallest |mask logit| at any
        position of any layer's attention mask (the logits as resized for the attention).
    """
    from mask2former.modeling.transformer_decoder import masked_attention_decoder as decoder_module

    original, per_layer = decoder_module.masked_attention_mask, []

    def watching(mask_logits, size, num_heads):
        # (B, Q, H, W) masks, or (B, Q, T, H, W) mask tubes resized frame by frame (the video decoder)
        frames = mask_logits if mask_logits.dim() == 4 else mask_logits.flatten(0, 1)
        resized = F.interpolate(frames, size=tuple(size), mode="bilinear", align_corners=False)
        per_layer.append(resized.reshape(*mask_logits.shape[:2], -1)[0].abs().amin(-1))
        return original(mask_logits, size, num_heads)

    decoder_module.masked_attention_mask = watching
    try:
        result = run()
    finally:
        decoder_module.masked_attention_mask = original
    return result, torch.stack(per_layer).amin(0)


def tie_queries(run: Callable[[], Any]) -> Tuple[Any, List[int]]:
    """``(run's result, the tie queries)``: those with a decision margin below :data:`TIE_MARGIN`."""
    result, margins = decision_margins(run)
    return result, (margins < TIE_MARGIN).nonzero().flatten().tolist()
