"""SeMask's Semantic Layer: semantic attention after the Swin blocks of a stage.

Jain et al., "SeMask: Semantically Masked Transformers for Semantic Segmentation" (2021,
arXiv:2112.12782), Sec. 3: every encoder stage is a Transformer Layer (the Swin blocks) followed
by a Semantic Layer of N_S SeMask attention blocks. A block projects the tokens to K class scores
(the stage's *semantic prior* map, supervised through the semantic decoder) and uses the
class-score affinity between tokens to re-weight the features, added back through a learned gate
that starts at 0, so a pretrained Swin is unchanged at the start of fine-tuning.

Module and state-dict names equal those of the original implementation (``norm1``,
``class_injection.{j}.gamma``, ``mlp_cls_q``, ``mlp_cls_k``, ``mlp_v``, ``mlp_res``), so the
released SeMask checkpoints load as they are.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from segcore.layers import ceil_to_multiple

from mask_former.modeling.backbone.swin import crop_map, window_partition, window_reverse

__all__ = ["SemanticAttention", "SemanticLayer"]


class SemanticAttention(nn.Module):
    """One SeMask attention block (Sec. 3).

    For tokens x (B', N, C):

    - ``s = mlp_cls_q(x)`` (B', N, K): the class scores, returned as the semantic map;
    - ``a = softmax(s @ mlp_cls_k(x)^T)`` (B', N, N): token affinity in class space (no scaling);
    - ``y = x + gamma * dropout(mlp_res(a @ mlp_v(x)))``.

    ``gamma`` (a learned scalar) and ``mlp_res`` start at zero, so the block initially passes x
    through unchanged; the other projections start Kaiming-normal with zero biases.

    Args:
        dim: C, channels of the tokens.
        num_classes: K, the classes of the semantic map.
        dropout: dropout on the re-weighted features (0.1 in the original, where it is a constant).
    """

    def __init__(self, *, dim: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"SemanticAttention: num_classes must be >= 1, got {num_classes}")
        self.dim = dim
        self.num_classes = num_classes
        self.gamma = nn.Parameter(torch.zeros(1))
        self.mlp_cls_q = nn.Linear(dim, num_classes)
        self.mlp_cls_k = nn.Linear(dim, num_classes)
        self.mlp_v = nn.Linear(dim, dim)
        self.mlp_res = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        for linear in (self.mlp_cls_q, self.mlp_cls_k, self.mlp_v):
            nn.init.kaiming_normal_(linear.weight)
            nn.init.zeros_(linear.bias)
        nn.init.zeros_(self.mlp_res.weight)
        nn.init.zeros_(self.mlp_res.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (B', N, C) float tokens (B' images or windows of N tokens).

        Returns:
            ``(semantic_map, y)``: (B', N, K) class scores (logits) and (B', N, C) features.
        """
        scores = self.mlp_cls_q(x)
        affinity = (scores @ self.mlp_cls_k(x).transpose(-2, -1)).softmax(dim=-1)
        gated = self.proj_drop(self.mlp_res(affinity @ self.mlp_v(x)))
        return scores, self.gamma * gated + x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_classes={self.num_classes}"


class SemanticLayer(nn.Module):
    """The Semantic Layer of one stage: LayerNorm, then N_S :class:`SemanticAttention` blocks (Sec. 3).

    The blocks attend either within non-overlapping windows of ``window_size`` x ``window_size``
    tokens (the map is zero-padded at the bottom / right to a multiple of the window after the
    norm; the padding tokens take part in the attention of their windows, then are cut off), or
    over the whole map (``window_size=None``). As in the original, the output is the normalized
    tokens plus the gated semantic attention (no residual from the stage's input), and the
    semantic map is the last block's.

    Args:
        dim: C, channels of the stage.
        num_classes: K.
        num_blocks: N_S >= 1.
        window_size: window side (tokens), or None for global attention.
        dropout: of each block (see :class:`SemanticAttention`).

    Raises:
        ValueError: ``num_blocks`` < 1 or ``window_size`` < 1.
    """

    def __init__(self, *, dim: int, num_classes: int, num_blocks: int = 1, window_size: Optional[int] = 7,
                 dropout: float = 0.1):
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"SemanticLayer: num_blocks (MODEL.SWIN.NUM_SEM_BLOCKS) must be >= 1, got {num_blocks}")
        if window_size is not None and window_size < 1:
            raise ValueError(f"SemanticLayer: window_size (MODEL.SWIN.SEM_WINDOW_SIZE) must be >= 1, got {window_size}")
        self.num_classes = num_classes
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim)
        self.class_injection = nn.ModuleList(
            SemanticAttention(dim=dim, num_classes=num_classes, dropout=dropout) for _ in range(num_blocks))

    def forward(self, x: torch.Tensor, height: int, width: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (B, H*W, C) tokens of an H x W map (row-major).
            height, width: H, W (tokens).

        Returns:
            ``(semantic_map, y)``: (B, H*W, K) class scores and (B, H*W, C) features.

        Raises:
            ValueError: the number of tokens is not H * W.
        """
        b, length, c = x.shape
        if length != height * width:
            raise ValueError(f"SemanticLayer: got {length} tokens for a {height}x{width} map")
        x = self.norm1(x)
        if self.window_size is None:
            return self._blocks(x)
        ws = self.window_size
        hp, wp = ceil_to_multiple(height, ws), ceil_to_multiple(width, ws)  # padded to whole windows
        x = F.pad(x.view(b, height, width, c), (0, 0, 0, wp - width, 0, hp - height))
        scores, x = self._blocks(window_partition(x, ws).view(-1, ws * ws, c))

        def to_tokens(windows: torch.Tensor) -> torch.Tensor:
            full = window_reverse(windows.view(-1, ws, ws, windows.shape[-1]), ws, hp, wp)
            return crop_map(full, height, width).reshape(b, height * width, -1)

        return to_tokens(scores), to_tokens(x)

    def _blocks(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        scores = None
        for block in self.class_injection:
            scores, x = block(x)
        return scores, x

    def extra_repr(self) -> str:
        return "global attention" if self.window_size is None else f"window_size={self.window_size}"
