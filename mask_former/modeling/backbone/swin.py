"""Swin Transformer backbone.

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows" (ICCV 2021),
https://arxiv.org/abs/2103.14030. The dense-prediction variant used by MaskFormer and Mask2Former:
any input size (padding to the patch size and, inside every block, to the window size), one
LayerNorm per output stage (``norm0`` .. ``norm3``) and the outputs ``res2`` .. ``res5`` at strides
4, 8, 16 and 32. Module and state-dict names equal those of the original implementation
(``patch_embed.proj``, ``layers.0.blocks.0.attn.relative_position_bias_table``, ``norm0``, ...),
so the converted official ImageNet checkpoints (``swin_tiny_patch4_window7_224.pkl`` etc.) and
the MaskFormer / Mask2Former model-zoo checkpoints load as they are.

Tensors are float (any floating dtype); token sequences are (B, H*W, C) in row-major order.
"""
from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from segcore.config import configurable
from segcore.layers import ShapeSpec, ceil_to_multiple
from segcore.modeling import BACKBONE_REGISTRY, Backbone

__all__ = [
    "BasicLayer",
    "StageOutput",
    "D2SwinTransformer",
    "DropPath",
    "Mlp",
    "PatchEmbed",
    "PatchMerging",
    "SwinTransformer",
    "SwinTransformerBlock",
    "WindowAttention",
    "crop_map",
    "relative_position_index",
    "shifted_window_attention_mask",
    "window_partition",
    "window_reverse",
]

# Added to the attention logits of token pairs that lie in different regions of a shifted window
# (Sec. 3.2, "Efficient batch computation for shifted configuration"); exp(-100) is 0 in float32.
MASKED_LOGIT = -100.0


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a feature map into non-overlapping square windows (Sec. 3.2).

    Args:
        x: (B, H, W, C); H and W must be multiples of ``window_size``.
        window_size: window side (tokens).

    Returns:
        (B * H/ws * W/ws, ws, ws, C), windows in row-major order within each image.
    """
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    # clone rather than contiguous(): always a copy (as contiguous() is here), without asking whether the
    # permuted tensor happens to be contiguous, which depends on a map of a single window
    return x.permute(0, 1, 3, 2, 4, 5).clone(memory_format=torch.contiguous_format).view(-1, window_size,
                                                                                          window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows: (B * H/ws * W/ws, ws, ws, C).
        window_size: window side (tokens).
        height, width: size H, W of the feature map (multiples of ``window_size``).

    Returns:
        (B, H, W, C).
    """
    nh, nw = height // window_size, width // window_size
    b = windows.shape[0] // (nh * nw)
    x = windows.view(b, nh, nw, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).clone(memory_format=torch.contiguous_format).view(b, height, width, -1)


def crop_map(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left (height, width) of a (B, H', W', C) map, i.e. ``x[:, :height, :width]`` (the map
    without its window padding), as a new contiguous tensor.

    Gathered with ``index_select`` rather than sliced: the same values, but no layout that depends on
    whether padding was added, so ``torch.export`` keeps height and width symbolic (one exported
    graph for every image size).
    """
    rows = torch.arange(height, device=x.device)
    cols = torch.arange(width, device=x.device)
    return x.index_select(1, rows).index_select(2, cols)


def relative_position_index(window_size: Tuple[int, int]) -> torch.Tensor:
    """Index into the relative position bias table for every pair of tokens in a window (Sec. 3.2).

    Token i at (y_i, x_i) and token j at (y_j, x_j) (row-major order in the window) get the index
    ``(y_i - y_j + Wh - 1) * (2 * Ww - 1) + (x_i - x_j + Ww - 1)``, a value in
    ``[0, (2 Wh - 1) (2 Ww - 1))``.

    Args:
        window_size: (Wh, Ww).

    Returns:
        int64 (Wh*Ww, Wh*Ww).
    """
    wh, ww = window_size
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # 2, Wh*Ww
    rel = coords[:, :, None] - coords[:, None, :]  # 2, Wh*Ww, Wh*Ww
    return (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)


def shifted_window_attention_mask(
    height: int, width: int, window_size: int, shift_size: int, device: Optional[torch.device] = None
) -> torch.Tensor:
    """Additive attention mask for shifted-window attention on a cyclically shifted map (Sec. 3.2).

    After rolling the (padded) map by ``-shift_size`` along both axes, the windows at the bottom and
    right edges hold tokens from up to 3 x 3 regions that are not adjacent in the image. Tokens in
    different regions must not attend to each other: their pair gets ``MASKED_LOGIT`` (-100).

    Args:
        height, width: size of the padded feature map (multiples of ``window_size``), tokens.
        window_size: window side (tokens).
        shift_size: cyclic shift (tokens), ``0 < shift_size < window_size``.
        device: device of the returned mask.

    Returns:
        float32 (num_windows, ws*ws, ws*ws) with 0 (may attend) and -100 (masked), windows in the
        order of :func:`window_partition`.
    """
    # region label 3 * (row band) + (column band), bands [0, -ws), [-ws, -shift), [-shift, end): computed
    # from the indices rather than written into slices, so that a symbolic size never becomes the
    # size of a (possibly empty) slice, which torch.export would specialize on
    def bands(size: int) -> torch.Tensor:
        index = torch.arange(size, device=device)
        return (index >= size - window_size).long() + (index >= size - shift_size).long()

    region = (3 * bands(height)[:, None] + bands(width)[None, :]).to(torch.float32).view(1, height, width, 1)
    region_windows = window_partition(region, window_size).view(-1, window_size * window_size)
    different = region_windows.unsqueeze(1) != region_windows.unsqueeze(2)
    return torch.zeros(different.shape, device=device).masked_fill(different, MASKED_LOGIT)


def _tokens_to_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H*W, C) row-major tokens -> a contiguous (B, C, H, W) map."""
    return tokens.view(-1, height, width, tokens.shape[-1]).permute(0, 3, 1, 2).contiguous()


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., ECCV 2016): drop a whole residual branch per sample.

    In training, each sample's branch output is zeroed with probability ``drop_prob`` and the kept
    ones are scaled by ``1 / (1 - drop_prob)``; in eval mode this is the identity. As timm's
    ``DropPath``, which the original Swin code uses.
    """

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"DropPath: drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, ...). Returns a tensor of the same shape and dtype."""
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep_prob)
        return x * keep / keep_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """The transformer feed-forward network: Linear, GELU, dropout, Linear, dropout (Sec. 3.1)."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class PatchEmbed(nn.Module):
    """Split the image into patches and embed them linearly (Sec. 3.1), optionally LayerNorm.

    The image is zero-padded at the right and bottom to a multiple of the patch size, so any
    input size works.
    """

    def __init__(self, *, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96, patch_norm: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_chans, H, W) -> (B, embed_dim, ceil(H / p), ceil(W / p))."""
        h, w = x.shape[-2:]
        p = self.patch_size
        x = F.pad(x, (0, ceil_to_multiple(w, p) - w, 0, ceil_to_multiple(h, p) - h))
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a relative position bias (W-MSA, Sec. 3.2).

    ``relative_position_bias_table`` ((2 Wh - 1)(2 Ww - 1), num_heads) holds one learned bias per
    relative offset and head; the buffer ``relative_position_index`` (Wh*Ww, Wh*Ww) selects the
    entry for each token pair (see :func:`relative_position_index`).

    The attention runs in ``F.scaled_dot_product_attention`` (the bias and the shift mask as its
    additive mask), equal to the written-out softmax(q k^T * scale + bias + mask) v up to float
    rounding; the written-out path runs when ``use_fused_attention`` is False and during training
    with attention dropout (whose random numbers it keeps).
    """

    #: compute the attention with F.scaled_dot_product_attention (see the class docstring)
    use_fused_attention = True

    def __init__(
        self,
        *,
        dim: int,
        window_size: Tuple[int, int],
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"WindowAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.window_size = tuple(window_size)
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        num_offsets = (2 * self.window_size[0] - 1) * (2 * self.window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_offsets, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """(num_heads, Wh*Ww, Wh*Ww): the bias added to the attention logits of each head."""
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        return bias.permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x: (num_windows * B, N, C) tokens of each window, N = Wh*Ww.
            mask: None, or (num_windows, N, N) additive mask (0 / -100), the same for every image.

        Returns:
            (num_windows * B, N, C).
        """
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (bw, heads, N, C / heads)
        if self.use_fused_attention and not (self.training and self.attn_drop.p > 0):
            bias = self.relative_position_bias().to(q.dtype)  # (heads, N, N)
            if mask is None:
                additive = bias.unsqueeze(0)
            else:
                nw = mask.shape[0]
                additive = (mask.to(q.dtype)[:, None] + bias[None]).unsqueeze(0)  # (1, nw, heads, N, N)
                additive = additive.expand(bw // nw, -1, -1, -1, -1).reshape(bw, self.num_heads, n, n)
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, scale=self.scale)
            x = x.transpose(1, 2).reshape(bw, n, c)
            return self.proj_drop(self.proj(x))
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.relative_position_bias().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(bw, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(x))


class SwinTransformerBlock(nn.Module):
    """One Swin Transformer block (Sec. 3.1, Fig. 3b): (shifted) window attention then MLP.

    ``x + DropPath(W-MSA(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``. The normalized map is
    zero-padded at the right and bottom to a multiple of the window size; with ``shift_size > 0``
    it is cyclically shifted by ``-shift_size`` and attention is restricted by
    :func:`shifted_window_attention_mask` (SW-MSA).
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"SwinTransformerBlock: shift_size {shift_size} must be in [0, window_size={window_size})")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(
            dim=dim,
            window_size=(window_size, window_size),
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop=attn_drop,
            proj_drop=drop,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, height: int, width: int, attn_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            x: (B, H*W, C) tokens of an H x W map.
            height, width: H, W (tokens).
            attn_mask: (num_windows, ws*ws, ws*ws) mask of the padded map from
                :func:`shifted_window_attention_mask`; used only when ``shift_size > 0``.

        Returns:
            (B, H*W, C).
        """
        b, length, c = x.shape
        if length != height * width:
            raise ValueError(f"SwinTransformerBlock: got {length} tokens for a {height}x{width} map")
        ws = self.window_size
        shortcut = x
        x = self.norm1(x).view(b, height, width, c)
        hp, wp = ceil_to_multiple(height, ws), ceil_to_multiple(width, ws)
        x = F.pad(x, (0, 0, 0, wp - width, 0, hp - height))
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        else:
            attn_mask = None
        windows = window_partition(x, ws).view(-1, ws * ws, c)
        windows = self.attn(windows, mask=attn_mask)
        x = window_reverse(windows.view(-1, ws, ws, c), ws, hp, wp)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = crop_map(x, height, width).reshape(b, height * width, c)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Downsample by 2: concatenate each 2 x 2 group of tokens (4C), LayerNorm, Linear to 2C (Sec. 3.1).

    An odd height or width is zero-padded at the bottom / right first.
    """

    def __init__(self, *, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """x: (B, H*W, C) -> (B, ceil(H/2) * ceil(W/2), 2C)."""
        b, length, c = x.shape
        if length != height * width:
            raise ValueError(f"PatchMerging: got {length} tokens for a {height}x{width} map")
        x = F.pad(x.view(b, height, width, c),
                  (0, 0, 0, ceil_to_multiple(width, 2) - width, 0, ceil_to_multiple(height, 2) - height))
        # order (top-left, bottom-left, top-right, bottom-right), as the official checkpoints expect
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class StageOutput(NamedTuple):
    """What one stage (:class:`BasicLayer`) returns.

    Attributes:
        out: (B, H*W, C) the stage's output tokens (normalized by the backbone into ``res{i+2}``).
        extras: ``{name: (B, H*W, C_e)}`` extra per-stage outputs of a subclass (e.g. SeMask's
            semantic maps); the backbone returns them as ``(B, C_e, H, W)`` maps. Empty here.
        next_x: the next stage's input: (B, ceil(H/2) * ceil(W/2), 2C) after patch merging, or
            ``out`` itself when the stage does not downsample.
        next_height, next_width: the size of ``next_x`` (tokens).
    """

    out: torch.Tensor
    extras: Dict[str, torch.Tensor]
    next_x: torch.Tensor
    next_height: int
    next_width: int


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks alternating regular (W-MSA) and shifted (SW-MSA) windows,
    then an optional downsampling (:class:`PatchMerging`) (Sec. 3.1, Fig. 3a).

    The blocks and the downsampling run separately (:meth:`forward_blocks`,
    :meth:`forward_downsample`), so a subclass can work on the stage's output between them and
    return extra outputs (:class:`StageOutput`), as SeMask's semantic layers do.
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: Sequence[float] = (),
        downsample: Optional[Callable[..., nn.Module]] = None,
        use_checkpoint: bool = False,
    ):
        """
        Args:
            dim: channels C of the stage.
            depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop: of
                every block (see :class:`SwinTransformerBlock`).
            drop_path: stochastic-depth rate of each block (length ``depth``).
            downsample: the downsampling layer's class (or factory), called as ``downsample(dim=dim)``
                and applied as ``layer(x, H, W)`` (e.g. :class:`PatchMerging`); None for none.
            use_checkpoint: recompute each block in the backward pass instead of storing its
                activations (``torch.utils.checkpoint``, non-reentrant); same outputs and gradients.

        Raises:
            ValueError: ``drop_path`` does not give one rate per block.
        """
        super().__init__()
        drop_path = list(drop_path) or [0.0] * depth
        if len(drop_path) != depth:
            raise ValueError(f"BasicLayer: {len(drop_path)} drop-path rates for {depth} blocks")
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                num_heads=num_heads,
                window_size=window_size,
                shift_size=0 if i % 2 == 0 else self.shift_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=drop_path[i],
            )
            for i in range(depth)
        )
        self.downsample = downsample(dim=dim) if downsample is not None else None

    def forward_blocks(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The stage's Swin blocks. x: (B, H*W, C) tokens of an H x W map -> (B, H*W, C)."""
        ws = self.window_size
        hp, wp = ceil_to_multiple(height, ws), ceil_to_multiple(width, ws)
        attn_mask = None
        if len(self.blocks) > 1 and self.shift_size > 0:
            attn_mask = shifted_window_attention_mask(hp, wp, ws, self.shift_size, device=x.device).to(x.dtype)
        for block in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, height, width, attn_mask, use_reentrant=False)
            else:
                x = block(x, height, width, attn_mask)
        return x

    def forward_downsample(self, x: torch.Tensor, height: int, width: int) -> Tuple[torch.Tensor, int, int]:
        """The downsampling: ``(next_x, next_height, next_width)``; ``(x, height, width)`` without one."""
        if self.downsample is None:
            return x, height, width
        return self.downsample(x, height, width), ceil_to_multiple(height, 2) // 2, ceil_to_multiple(width, 2) // 2

    def forward(self, x: torch.Tensor, height: int, width: int) -> StageOutput:
        """
        Args:
            x: (B, H*W, C).
            height, width: H, W (tokens).

        Returns:
            a :class:`StageOutput` (no extras).
        """
        out = self.forward_blocks(x, height, width)
        return StageOutput(out, {}, *self.forward_downsample(out, height, width))


class SwinTransformer(nn.Module):
    """The Swin Transformer backbone for dense prediction (Sec. 3, Fig. 3a).

    Patch embedding (+ optional absolute position embedding), 4 stages of
    :class:`BasicLayer` with patch merging between them, and a LayerNorm ``norm{i}`` on the output
    of every stage. The stochastic-depth rate grows linearly from 0 to ``drop_path_rate`` over all
    blocks (Sec. 4.1 / Appendix A2).
    """

    def __init__(
        self,
        *,
        pretrain_img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        ape: bool = False,
        patch_norm: bool = True,
        frozen_stages: int = -1,
        use_checkpoint: bool = False,
        layer_cls: Callable[..., nn.Module] = BasicLayer,
        downsample_cls: Optional[Callable[..., nn.Module]] = PatchMerging,
    ):
        """
        Args:
            pretrain_img_size: image size (pixels) of the ImageNet pre-training; sets the size
                of the absolute position embedding, which is interpolated to the input.
            patch_size: patch side (pixels).
            in_chans: input channels.
            embed_dim: channels C of stage 1; stage i has C * 2**i.
            depths, num_heads: blocks and attention heads per stage.
            window_size: attention window side (tokens).
            mlp_ratio: MLP hidden width / channels.
            qkv_bias: learn a bias for query, key and value.
            qk_scale: overrides the attention scale ``head_dim ** -0.5``.
            drop_rate, attn_drop_rate: dropout on embeddings / projections and on attention weights.
            drop_path_rate: stochastic-depth rate of the last block.
            ape: add an absolute position embedding ``absolute_pos_embed`` after the patch embedding.
            patch_norm: LayerNorm after the patch embedding.
            frozen_stages: -1 trains everything; 0 freezes the patch embedding; 1 also the absolute
                position embedding; k >= 2 also the first k - 1 stages (no gradients, eval mode).
            use_checkpoint: activation checkpointing in every block (saves memory in training).
            layer_cls: the stage class (:class:`BasicLayer` or a subclass), built by :meth:`build_layer`.
            downsample_cls: the layer between stages (:class:`PatchMerging`), passed to every stage
                but the last as its ``downsample``; None for no downsampling.

        Raises:
            ValueError: ``depths`` and ``num_heads`` differ in length.
        """
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"SwinTransformer: depths {list(depths)} and num_heads {list(num_heads)} differ in length")
        self.num_layers = len(depths)
        self.ape = ape
        self.frozen_stages = frozen_stages
        self.num_features = [int(embed_dim * 2**i) for i in range(self.num_layers)]

        self.patch_embed = PatchEmbed(
            patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, patch_norm=patch_norm
        )
        if ape:
            grid = pretrain_img_size // patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid, grid))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)

        self.layer_cls = layer_cls
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(self.num_layers + 1)]
        self.layers = nn.ModuleList(
            self.build_layer(
                i,
                dim=self.num_features[i],
                depth=depths[i],
                num_heads=num_heads[i],
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rates[starts[i] : starts[i + 1]],
                downsample=downsample_cls if i < self.num_layers - 1 else None,
                use_checkpoint=use_checkpoint,
            )
            for i in range(self.num_layers)
        )
        for i, channels in enumerate(self.num_features):
            self.add_module(f"norm{i}", nn.LayerNorm(channels))
        self._freeze_stages()

    def build_layer(self, index: int, **kwargs) -> nn.Module:
        """Build stage ``index`` (0-based): ``self.layer_cls(**kwargs)``.

        The hook a subclass overrides to build other stages (e.g. with per-stage extra modules).
        It runs inside ``__init__``: a subclass that needs its own settings here sets them (plain
        attributes) before calling ``super().__init__``.

        Args:
            index: the stage.
            kwargs: the :class:`BasicLayer` arguments of that stage (dim, depth, num_heads, ...,
                downsample, use_checkpoint).

        Returns:
            a module called as ``layer(x, H, W) -> StageOutput``.
        """
        return self.layer_cls(**kwargs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            self.patch_embed.eval()
            self.patch_embed.requires_grad_(False)
        if self.frozen_stages >= 1 and self.ape:
            self.absolute_pos_embed.requires_grad_(False)
        if self.frozen_stages >= 2:
            self.pos_drop.eval()
            for layer in self.layers[: self.frozen_stages - 1]:
                layer.eval()
                layer.requires_grad_(False)

    def train(self, mode: bool = True):
        """Set train / eval mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def forward_stages(self, x: torch.Tensor, stages: Optional[Sequence[int]] = None) -> Dict[int, torch.Tensor]:
        """
        Args:
            x: (B, in_chans, H, W) float images, any H and W.
            stages: indices (0-based) of the stages to return; None for all.

        Returns:
            {i: (B, C * 2**i, H_i, W_i)} normalized by ``norm{i}``, with H_0 = ceil(H / patch) and
            H_{i+1} = ceil(H_i / 2) (likewise W).
        """
        return self.forward_stages_with_extras(x, stages)[0]

    def forward_stages_with_extras(
        self, x: torch.Tensor, stages: Optional[Sequence[int]] = None
    ) -> Tuple[Dict[int, torch.Tensor], Dict[int, Dict[str, torch.Tensor]]]:
        """:meth:`forward_stages`, plus each returned stage's extra outputs.

        Returns:
            ``(outs, extras)``: ``outs`` as :meth:`forward_stages`; ``extras[i]`` is stage i's
            ``StageOutput.extras`` reshaped from (B, H_i*W_i, C_e) tokens to (B, C_e, H_i, W_i)
            maps (not normalized); empty dicts for plain Swin stages.
        """
        wanted = set(range(self.num_layers)) if stages is None else set(stages)
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        if self.ape:
            x = x + F.interpolate(self.absolute_pos_embed, size=(h, w), mode="bicubic")
        x = self.pos_drop(x.flatten(2).transpose(1, 2))
        outs, extras = {}, {}
        for i, layer in enumerate(self.layers):
            stage = layer(x, h, w)
            if i in wanted:
                out = getattr(self, f"norm{i}")(stage.out)
                outs[i] = _tokens_to_map(out, h, w)
                extras[i] = {name: _tokens_to_map(t, h, w) for name, t in stage.extras.items()}
            if i >= max(wanted, default=-1):
                break
            x, h, w = stage.next_x, stage.next_height, stage.next_width
        return outs, extras

    def forward(self, x: torch.Tensor) -> Dict[int, torch.Tensor]:
        """All stage outputs; see :meth:`forward_stages`."""
        return self.forward_stages(x)


@BACKBONE_REGISTRY.register()
class D2SwinTransformer(SwinTransformer, Backbone):
    """:class:`SwinTransformer` as a Detectron2-style backbone (as in MaskFormer's ``D2SwinTransformer``).

    Outputs ``res2`` .. ``res5`` (strides 4, 8, 16, 32 pixels for patch size 4; channels C, 2C, 4C,
    8C), restricted to ``out_features``. Configured by ``MODEL.SWIN.*``.
    """

    @configurable
    def __init__(self, *, out_features: Sequence[str] = ("res2", "res3", "res4", "res5"), **kwargs):
        """
        Args:
            out_features: names among ``res2`` .. ``res{num_stages + 1}`` to return.
            kwargs: the arguments of :class:`SwinTransformer`.

        Raises:
            ValueError: an unknown name in ``out_features``.
        """
        super().__init__(**kwargs)
        patch = self.patch_embed.patch_size
        names = [f"res{i + 2}" for i in range(self.num_layers)]
        unknown = [n for n in out_features if n not in names]
        if unknown:
            raise ValueError(
                f"D2SwinTransformer: unknown out_features {unknown} (MODEL.SWIN.OUT_FEATURES); choose from {names}"
            )
        self._out_features = list(out_features)
        self._out_feature_strides = {n: patch * 2**i for i, n in enumerate(names)}
        self._out_feature_channels = dict(zip(names, self.num_features))

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[ShapeSpec] = None):
        if "SWIN" not in cfg.MODEL:
            raise KeyError("D2SwinTransformer needs the MODEL.SWIN.* keys: call mask_former.add_swin_config(cfg) first")
        s = cfg.MODEL.SWIN
        in_chans = input_shape.channels if input_shape is not None and input_shape.channels else 3
        return {
            "pretrain_img_size": s.PRETRAIN_IMG_SIZE,
            "patch_size": s.PATCH_SIZE,
            "in_chans": in_chans,
            "embed_dim": s.EMBED_DIM,
            "depths": list(s.DEPTHS),
            "num_heads": list(s.NUM_HEADS),
            "window_size": s.WINDOW_SIZE,
            "mlp_ratio": s.MLP_RATIO,
            "qkv_bias": s.QKV_BIAS,
            "qk_scale": s.QK_SCALE,
            "drop_rate": s.DROP_RATE,
            "attn_drop_rate": s.ATTN_DROP_RATE,
            "drop_path_rate": s.DROP_PATH_RATE,
            "ape": s.APE,
            "patch_norm": s.PATCH_NORM,
            "use_checkpoint": s.USE_CHECKPOINT,
            "out_features": list(s.OUT_FEATURES),
        }

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            x: (N, C, H, W) float images. Any H, W work; heads that fuse stages expect multiples
                of :attr:`size_divisibility`.

        Returns:
            {name: (N, channels, ceil(H / stride), ceil(W / stride))} for each of ``out_features``,
            and for each extra output ``e`` of those stages (a subclass's stages, e.g. SeMask's
            semantic maps) an entry ``"{name}_{e}"`` (e.g. ``"res2_sem_seg"``) of the same size;
            heads read only the names they were built for.

        Raises:
            ValueError: ``x`` is not 4-D.
        """
        if x.dim() != 4:
            raise ValueError(f"D2SwinTransformer takes an input of shape (N, C, H, W), got {tuple(x.shape)}")
        stages = {n: int(n[3:]) - 2 for n in self._out_features}
        outs, extras = self.forward_stages_with_extras(x, list(stages.values()))
        result = {n: outs[i] for n, i in stages.items()}
        for n, i in stages.items():
            result.update({f"{n}_{e}": t for e, t in extras[i].items()})
        return result

    @property
    def size_divisibility(self) -> int:
        return 32
