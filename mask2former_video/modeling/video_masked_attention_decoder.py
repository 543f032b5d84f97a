"""The video masked-attention transformer decoder (Cheng et al., "Mask2Former for Video Instance
Segmentation", arXiv 2112.10764, Sec. 3; the original
``mask2former_video/modeling/transformer_decoder/video_mask2former_transformer_decoder.py``).

Registered in :data:`mask_former.modeling.TRANSFORMER_DECODER_REGISTRY` as
``"VideoMultiScaleMaskedTransformerDecoder"`` (the original configs' name). It is Mask2Former's
image decoder (:class:`~mask2former.modeling.transformer_decoder.MultiScaleMaskedTransformerDecoder`:
the same layers, module names, loop and learnable queries), applied to the features of all T frames
of a clip at once; only three things change, each in one overridden method:

- the memory (:meth:`_prepare_memory`): every level's features of the T frames form one sequence of
  T * H_l * W_l keys (frame-major), with a 3-D sine position encoding over (t, y, x);
- the mask prediction (:meth:`_mask_logits`): a query's mask embedding against the per-pixel
  embeddings of every frame, a mask tube (B, N, T, H, W);
- masked attention: the tube, resized frame by frame, masks the T * H_l * W_l keys (the same
  :func:`mask2former.modeling.transformer_decoder.masked_attention_mask`, which takes tubes).

So its state dict equals the image decoder's and the original's (official YouTube-VIS checkpoints load).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from mask2former.modeling.transformer_decoder import MultiScaleMaskedTransformerDecoder
from mask_former.modeling.transformer import TRANSFORMER_DECODER_REGISTRY
from segcore.config import configurable

from .position_encoding import PositionEmbeddingSine3D

__all__ = ["VideoMultiScaleMaskedTransformerDecoder"]


@TRANSFORMER_DECODER_REGISTRY.register("VideoMultiScaleMaskedTransformerDecoder")
class VideoMultiScaleMaskedTransformerDecoder(MultiScaleMaskedTransformerDecoder):
    """Queries shared by the T frames of a clip, decoded by masked attention over all frames' features.

    One set of N learnable queries per clip (not per frame): each query attends, layer by layer, to
    the multi-scale features of every frame at once (round robin over the three levels, coarsest
    first, as the image decoder), restricted to the foreground of the mask tube it predicted
    before; it predicts one class (K + 1 logits) and one mask tube over the T frames (the dot
    product of its mask embedding with each frame's per-pixel embeddings). Sec. 3 of the paper:
    no change to the image model but the 3-D position encoding and the attention over
    space-time features.

    Clips: the backbone and the pixel decoder see the frames as a batch of B * T images, clip after
    clip. In training the clips have ``num_frames`` frames (``INPUT.SAMPLING_FRAME_NUM``), so
    B = batch / num_frames; in eval the whole batch is one clip (B = 1, T = all frames of the
    video), as the original.

    Args:
        in_channels, mask_classification, num_classes, hidden_dim, num_queries, nheads,
        dim_feedforward, dec_layers, pre_norm, mask_dim, enforce_input_project: as
            :class:`MultiScaleMaskedTransformerDecoder`.
        num_frames: frames per training clip (>= 1).

    ``forward(x, mask_features, mask=None)``: x three float (B * T, in_channels, H_l, W_l) levels,
    coarsest first; mask_features float (B * T, mask_dim, H/4, W/4). Returns ``{"pred_logits": (B,
    N, K+1), "pred_masks": (B, N, T, H/4, W/4), "aux_outputs": [...]}`` (the image decoder's outputs
    with mask tubes; only the last two inside ``final_predictions_only``).

    Raises:
        ValueError: the image decoder's argument errors; ``num_frames`` < 1; in training, a batch
            of frames that is not a multiple of ``num_frames`` (from ``forward``).
    """

    #: the set criterion this decoder is trained with (``mask_former.modeling.CRITERION_REGISTRY``)
    criterion_name = "VideoSetCriterion"

    @configurable
    def __init__(self, in_channels: int, mask_classification: bool = True, *, num_classes: int, hidden_dim: int,
                 num_queries: int, nheads: int, dim_feedforward: int, dec_layers: int, pre_norm: bool,
                 mask_dim: int, enforce_input_project: bool, num_frames: int):
        super().__init__(in_channels, mask_classification, num_classes=num_classes, hidden_dim=hidden_dim,
                         num_queries=num_queries, nheads=nheads, dim_feedforward=dim_feedforward,
                         dec_layers=dec_layers, pre_norm=pre_norm, mask_dim=mask_dim,
                         enforce_input_project=enforce_input_project)
        if num_frames < 1:
            raise ValueError(f"VideoMultiScaleMaskedTransformerDecoder: num_frames must be >= 1, got {num_frames}")
        self.num_frames = num_frames
        self.pe_layer = PositionEmbeddingSine3D(hidden_dim // 2, normalize=True)  # no parameters

    @classmethod
    def from_config(cls, cfg, in_channels: int, mask_classification: bool = True) -> dict:
        """The image decoder's arguments plus ``num_frames = INPUT.SAMPLING_FRAME_NUM``."""
        args = super().from_config(cfg, in_channels, mask_classification)
        args["num_frames"] = cfg.INPUT.SAMPLING_FRAME_NUM
        return args

    def clip_shape(self, num_images: int) -> Tuple[int, int]:
        """(clips B, frames per clip T) of a batch of ``num_images`` frames: training clips of
        ``num_frames`` frames; in eval one clip of every frame (the original's rule).

        Raises:
            ValueError: in training, ``num_images`` is not a multiple of ``num_frames``.
        """
        if not self.training:
            return 1, num_images
        if num_images % self.num_frames:
            raise ValueError(f"{type(self).__name__}: a training batch of {num_images} frames is not made of clips of "
                             f"INPUT.SAMPLING_FRAME_NUM = {self.num_frames} frames")
        return num_images // self.num_frames, self.num_frames

    def _prepare_memory(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[torch.Size]]:
        """Per level: projected features + level embedding and 3-D sine positions, both
        (T * H_l * W_l, B, C) (frame-major), and (H_l, W_l)."""
        src, pos, sizes = [], [], []
        for i, feature in enumerate(x):
            h, w = feature.shape[-2:]
            sizes.append(feature.shape[-2:])
            b, t = self.clip_shape(feature.shape[0])
            position = self.pe_layer(feature.view(b, t, -1, h, w), None).flatten(3)  # (B, T, C, HW)
            projected = self.input_proj[i](feature).flatten(2) + self.level_embed.weight[i][None, :, None]
            channels = projected.shape[1]
            # (B T, C, HW) -> (B, T, C, HW) -> (T, HW, B, C) -> (T HW, B, C)
            pos.append(position.view(b, t, channels, h * w).permute(1, 3, 0, 2).flatten(0, 1))
            src.append(projected.view(b, t, channels, h * w).permute(1, 3, 0, 2).flatten(0, 1))
        return src, pos, sizes

    def _mask_logits(self, mask_embedding: Tensor, mask_features: Tensor) -> Tensor:
        """Mask tubes (B, N, T, H, W): each query's embedding (B, N, mask_dim) against the per-pixel
        embeddings (B * T, mask_dim, H, W) of every frame of its clip."""
        b = mask_embedding.shape[0]
        bt, c, h, w = mask_features.shape
        return torch.einsum("bqc,btchw->bqthw", mask_embedding, mask_features.view(b, bt // b, c, h, w))
