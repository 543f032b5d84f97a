"""The semantic-prior loss: per-pixel cross-entropy of the semantic decoder's output.

Jain et al., "SeMask" (2021), Sec. 3: the semantic decoder's prediction is supervised with the
ground-truth semantic map; the loss is added to the segmentation losses with weight
``MODEL.MASK_FORMER.CATE_WEIGHT`` (0.4 in the released configs; named ``loss_cate`` as in the
original).
"""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F

__all__ = ["pad_semantic_targets", "semantic_prior_loss"]


def pad_semantic_targets(sem_segs: Sequence[torch.Tensor], size: Sequence[int], ignore_value: int) -> torch.Tensor:
    """Stack per-image ground-truth maps into one batch, padded to ``size``.

    Args:
        sem_segs: per image an integer (H_b, W_b) map of class ids (``ignore_value`` where ignored),
            H_b <= H and W_b <= W (e.g. the unpadded or the mapper-padded image size).
        size: (H, W), the padded batch size (pixels).
        ignore_value: the label of the padding.

    Returns:
        int64 (B, H, W), on the device of the first map.

    Raises:
        ValueError: a map is not 2-D or larger than ``size``.
    """
    h, w = int(size[0]), int(size[1])
    out: List[torch.Tensor] = []
    for i, m in enumerate(sem_segs):
        if m.dim() != 2 or m.shape[0] > h or m.shape[1] > w:
            raise ValueError(f"pad_semantic_targets: sem_seg {i} has shape {tuple(m.shape)}; expected a 2-D map of "
                             f"at most {h}x{w} (the padded image size)")
        padded = torch.full((h, w), ignore_value, dtype=torch.int64, device=m.device)
        padded[: m.shape[0], : m.shape[1]] = m
        out.append(padded)
    return torch.stack(out)


def semantic_prior_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_value: int) -> torch.Tensor:
    """Mean cross-entropy over the pixels whose label is not ``ignore_value``.

    Args:
        logits: (B, K, H, W) float semantic-decoder logits (computed in float32).
        targets: int64 (B, H, W) class ids in [0, K) or ``ignore_value``.
        ignore_value: the label that does not count.

    Returns:
        a scalar. When every pixel is ignored it is 0 (connected to the graph), where PyTorch's
        mean over no pixel (and the original) would give NaN.

    Raises:
        ValueError: the spatial sizes of ``logits`` and ``targets`` differ.
    """
    if logits.shape[-2:] != targets.shape[-2:] or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"semantic_prior_loss: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} "
                         "differ in batch or spatial size")
    if not bool((targets != ignore_value).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets, ignore_index=ignore_value)
