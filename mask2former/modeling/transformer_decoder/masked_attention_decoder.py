"""Mask2Former's transformer decoder with masked attention (Cheng et al., "Masked-attention Mask
Transformer for Universal Image Segmentation", CVPR 2022, Sec. 3.2 and Fig. 2).

Registered in :data:`mask_former.modeling.TRANSFORMER_DECODER_REGISTRY` as
``"MultiScaleMaskedTransformerDecoder"`` (``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME`` of the
original configs). Module names equal the original's (``transformer_self_attention_layers.N``,
``transformer_cross_attention_layers.N``, ``transformer_ffn_layers.N``, ``decoder_norm``,
``query_feat``, ``query_embed``, ``level_embed``, ``input_proj.N``, ``class_embed``,
``mask_embed.layers.N``) so official checkpoints load.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mask_former.modeling.transformer import MLP, TRANSFORMER_DECODER_REGISTRY, PositionEmbeddingSine
from segcore.config import configurable
from segcore.layers import Conv2d, c2_xavier_fill

from .attention_layers import CrossAttentionLayer, FFNLayer, SelfAttentionLayer

__all__ = ["MultiScaleMaskedTransformerDecoder", "masked_attention_mask"]

#: a resized mask logit whose sigmoid is below this is outside the query's mask (Sec. 3.2.1, Eq. 3)
MASK_FOREGROUND_THRESHOLD = 0.5


def masked_attention_mask(mask_logits: Tensor, size: Sequence[int], num_heads: int) -> Tensor:
    """The attention mask of masked cross-attention from the previous layer's mask prediction.

    Mask2Former Sec. 3.2.1, Eq. (2)-(3): query q may attend to feature position (x, y) only where its
    predicted mask, resized to the feature map's resolution, is foreground (sigmoid >= 0.5). A query
    whose mask is empty everywhere attends to every position instead (as the original code does; it
    also avoids an all-masked softmax).

    Video (Mask2Former for VIS, Cheng et al. 2021, Sec. 3): a query predicts a mask tube over the T
    frames of a clip and attends to the features of all frames at once; each frame's mask is
    resized, and the positions are frame-major (t, y, x), as the video decoder lays out its memory.
    A query is unmasked everywhere only when its whole tube is empty.

    Args:
        mask_logits: float (B, Q, H, W), the predicted mask logits (at the mask features' resolution),
            or (B, Q, T, H, W) for mask tubes.
        size: (h, w) of the feature map the next layer attends to; the logits are resized to it
            bilinearly (``align_corners=False``), frame by frame.
        num_heads: attention heads; the mask is repeated per head.

    Returns:
        bool (B * num_heads, Q, h * w) (tubes: (B * num_heads, Q, T * h * w)), True where the query may
        NOT attend, entry ``b * num_heads + k`` for image (clip) b and head k (``nn.MultiheadAttention``'s
        layout of a 3-D ``attn_mask``); detached.

    Raises:
        ValueError: mask_logits is not 4-D or 5-D, or num_heads < 1.
    """
    if mask_logits.dim() not in (4, 5):
        raise ValueError("masked_attention_mask: mask_logits must be (B, Q, H, W) or (B, Q, T, H, W), got shape "
                         f"{tuple(mask_logits.shape)}")
    if num_heads < 1:
        raise ValueError(f"masked_attention_mask: num_heads must be >= 1, got {num_heads}")
    batch, queries = mask_logits.shape[:2]
    # a tube's frames are the channels of one (B * Q) map: every frame is resized on its own
    frames = mask_logits.detach() if mask_logits.dim() == 4 else mask_logits.detach().flatten(0, 1)
    resized = F.interpolate(frames, size=tuple(size), mode="bilinear", align_corners=False)
    blocked = resized.sigmoid().reshape(batch, queries, -1) < MASK_FOREGROUND_THRESHOLD
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
    return blocked.repeat_interleave(num_heads, dim=0)


@TRANSFORMER_DECODER_REGISTRY.register("MultiScaleMaskedTransformerDecoder")
class MultiScaleMaskedTransformerDecoder(nn.Module):
    """Learnable queries decoded by masked attention over multi-scale features (Mask2Former Sec. 3.2).

    Each decoder layer is masked cross-attention -> self-attention -> FFN (Sec. 3.2.3: cross-attention
    first, no dropout), each with a residual connection and LayerNorm (post-norm unless ``pre_norm``).
    Layer i attends to feature level ``i % 3`` of the pixel decoder's multi-scale features, coarsest
    first (round robin, Sec. 3.2.2), restricted to the foreground of the mask predicted before it
    (:func:`masked_attention_mask`). The queries start from learnable features (``query_feat``,
    supervised too, Sec. 3.2.3) with learnable positions (``query_embed``); each level's features are
    projected to ``hidden_dim`` (``input_proj``: a 1x1 conv, or none when the widths match and
    ``enforce_input_project`` is False), summed with a learnable ``level_embed`` and given sine
    position encodings as keys.

    Predictions (class logits over K + 1 labels, the last "no object", and mask logits: the dot
    product of a 3-layer MLP's mask embedding with the per-pixel embeddings) are made from the
    ``decoder_norm``-ed queries before the first layer and after every layer.

    Trained with the point-sampled set criterion (``criterion_name``); Mask2Former's panoptic
    inference keeps only the confident pixels of a segment (``panoptic_mask_must_be_confident``).

    Args:
        in_channels: channels C_in of each multi-scale feature (the pixel decoder's conv_dim).
        mask_classification: must be True (the original supports class-predicting models only).
        num_classes: K. hidden_dim: query and attention width. num_queries: N. nheads: attention
        heads. dim_feedforward: FFN hidden width.
        dec_layers: decoder layers L (>= 0). The config's ``DEC_LAYERS`` counts the prediction from
            the learnable queries too, so :meth:`from_config` passes ``DEC_LAYERS - 1``.
        pre_norm: pre-LayerNorm sub-layers instead of post-LayerNorm.
        mask_dim: width of the per-pixel embeddings (``SEM_SEG_HEAD.MASK_DIM``).
        enforce_input_project: a 1x1 projection even when ``in_channels == hidden_dim``.

    Raises:
        ValueError: mask_classification is False, dec_layers < 0, hidden_dim is odd or not divisible
            by nheads, or a size is not positive.
    """

    #: the set criterion this decoder is trained with (``mask_former.modeling.CRITERION_REGISTRY``)
    criterion_name = "PointSampledSetCriterion"
    #: panoptic inference keeps only a segment's pixels whose mask probability is >= 0.5
    panoptic_mask_must_be_confident = True
    #: how many multi-scale feature levels the layers cycle over (the original always uses 3)
    num_feature_levels = 3
    #: state-dict format; version 1 named ``query_feat`` ``static_query``
    _version = 2
    #: inference: only the last prediction, intermediate masks at the attention's resolution
    #: (set by :func:`mask_former.modeling.transformer.final_predictions_only`)
    final_predictions_only = False

    @configurable
    def __init__(self, in_channels: int, mask_classification: bool = True, *, num_classes: int, hidden_dim: int,
                 num_queries: int, nheads: int, dim_feedforward: int, dec_layers: int, pre_norm: bool,
                 mask_dim: int, enforce_input_project: bool):
        super().__init__()
        if not mask_classification:
            raise ValueError("MultiScaleMaskedTransformerDecoder supports mask classification only "
                             "(mask_classification=True), as the original; got mask_classification=False")
        if dec_layers < 0:
            raise ValueError(f"MultiScaleMaskedTransformerDecoder: dec_layers must be >= 0, got {dec_layers}")
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("hidden_dim", hidden_dim),
                            ("num_queries", num_queries), ("nheads", nheads), ("dim_feedforward", dim_feedforward),
                            ("mask_dim", mask_dim)):
            if value < 1:
                raise ValueError(f"MultiScaleMaskedTransformerDecoder: {name} must be >= 1, got {value}")
        if hidden_dim % 2 or hidden_dim % nheads:
            raise ValueError(f"MultiScaleMaskedTransformerDecoder: hidden_dim ({hidden_dim}) must be even (sine "
                             f"position encoding) and divisible by nheads ({nheads})")
        self.mask_classification = mask_classification
        self.in_channels = in_channels
        self.mask_dim = mask_dim
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)

        self.num_heads = nheads
        self.num_layers = dec_layers
        self.transformer_self_attention_layers = nn.ModuleList()
        self.transformer_cross_attention_layers = nn.ModuleList()
        self.transformer_ffn_layers = nn.ModuleList()
        # built layer by layer, as the original, so a seed gives the original's initial weights
        for _ in range(dec_layers):
            self.transformer_self_attention_layers.append(
                SelfAttentionLayer(d_model=hidden_dim, nhead=nheads, dropout=0.0, normalize_before=pre_norm))
            self.transformer_cross_attention_layers.append(
                CrossAttentionLayer(d_model=hidden_dim, nhead=nheads, dropout=0.0, normalize_before=pre_norm))
            self.transformer_ffn_layers.append(
                FFNLayer(d_model=hidden_dim, dim_feedforward=dim_feedforward, dropout=0.0, normalize_before=pre_norm))
        self.decoder_norm = nn.LayerNorm(hidden_dim)

        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)

        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(self.num_feature_levels):
            if in_channels != hidden_dim or enforce_input_project:
                proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
                c2_xavier_fill(proj)
            else:
                proj = nn.Sequential()
            self.input_proj.append(proj)

        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)

    @classmethod
    def from_config(cls, cfg, in_channels: int, mask_classification: bool = True) -> dict:
        """The constructor's arguments from ``MODEL.SEM_SEG_HEAD`` and ``MODEL.MASK_FORMER``.

        Raises:
            ValueError: ``MODEL.MASK_FORMER.DEC_LAYERS`` < 1 (it counts the learnable-query prediction).
        """
        mf = cfg.MODEL.MASK_FORMER
        if mf.DEC_LAYERS < 1:
            raise ValueError(f"MODEL.MASK_FORMER.DEC_LAYERS must be >= 1 for MultiScaleMaskedTransformerDecoder "
                             f"(it counts the prediction from the learnable queries: DEC_LAYERS - 1 decoder "
                             f"layers), got {mf.DEC_LAYERS}")
        return {
            "in_channels": in_channels,
            "mask_classification": mask_classification,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "hidden_dim": mf.HIDDEN_DIM,
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "nheads": mf.NHEADS,
            "dim_feedforward": mf.DIM_FEEDFORWARD,
            "dec_layers": mf.DEC_LAYERS - 1,
            "pre_norm": mf.PRE_NORM,
            "enforce_input_project": mf.ENFORCE_INPUT_PROJ,
            "mask_dim": cfg.MODEL.SEM_SEG_HEAD.MASK_DIM,
        }

    def forward(self, x: Sequence[Tensor], mask_features: Tensor, mask: Optional[Tensor] = None) -> Dict:
        """Decode the queries against the multi-scale features.

        Args:
            x: ``num_feature_levels`` (3) float tensors (B, in_channels, H_l, W_l), coarsest first
                (the pixel decoder's ``multi_scale_features``).
            mask_features: float (B, mask_dim, H/4, W/4), the per-pixel embeddings.
            mask: ignored (padding is not masked, as in the original); accepted for the decoders' interface.

        Returns:
            ``{"pred_logits": (B, N, K+1), "pred_masks": (B, N, H/4, W/4), "aux_outputs": [...]}``
            from the last layer; ``aux_outputs`` holds ``dec_layers`` dicts with the same two keys,
            the earlier predictions in order, the first from the learnable queries (before any layer).
            Inside :func:`~mask_former.modeling.transformer.final_predictions_only` (inference), only
            the last ``pred_logits`` and ``pred_masks``.

        Raises:
            ValueError: x does not have ``num_feature_levels`` entries, or a tensor's shape is wrong.
        """
        del mask  # the original does not mask padded positions
        self._check_inputs(x, mask_features)
        src, pos, sizes = self._prepare_memory(x)
        batch_size = src[0].shape[1]
        query_pos = self.query_embed.weight.unsqueeze(1).repeat(1, batch_size, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, batch_size, 1)
        # inference (final_predictions_only): no intermediate predictions, only the attention masks,
        # from the per-pixel embeddings resized to each level (see _attention_mask)
        intermediate = not self.final_predictions_only
        level_features: Dict[str, Tensor] = {}
        predictions: List[Tuple[Tensor, Tensor]] = []
        attn_mask = None
        for i in range(self.num_layers + 1):
            if i > 0:  # decoder layer i - 1 attends with the mask predicted before it
                output = self._decoder_layer(i - 1, output, src, pos, attn_mask, query_pos)
            if i == self.num_layers:
                break
            # the prediction before layer i, and the attention mask it gives layer i
            level_size = sizes[i % self.num_feature_levels]
            if intermediate:
                outputs_class, outputs_mask = self._predict(output, mask_features)
                predictions.append((outputs_class, outputs_mask))
                attn_mask = masked_attention_mask(outputs_mask, level_size, self.num_heads)
            else:
                attn_mask = self._attention_mask(output, mask_features, level_size, level_features)
        pred_logits, pred_masks = self._predict(output, mask_features)
        if not intermediate:
            return {"pred_logits": pred_logits, "pred_masks": pred_masks}
        return {"pred_logits": pred_logits, "pred_masks": pred_masks,
                "aux_outputs": [{"pred_logits": c, "pred_masks": m} for c, m in predictions]}

    def _decoder_layer(self, i: int, output: Tensor, src: List[Tensor], pos: List[Tensor],
                       attn_mask: Optional[Tensor], query_pos: Tensor) -> Tensor:
        """Layer ``i`` (Sec. 3.2): masked cross-attention to level ``i % num_feature_levels``, then
        self-attention, then the feed-forward network; (N, B, C) queries in and out."""
        level = i % self.num_feature_levels
        output = self.transformer_cross_attention_layers[i](output, src[level], memory_mask=attn_mask,
                                                            memory_key_padding_mask=None, pos=pos[level],
                                                            query_pos=query_pos)
        output = self.transformer_self_attention_layers[i](output, tgt_mask=None, tgt_key_padding_mask=None,
                                                           query_pos=query_pos)
        return self.transformer_ffn_layers[i](output)

    def _predict(self, output: Tensor, mask_features: Tensor) -> Tuple[Tensor, Tensor]:
        """Class logits float (B, N, K+1) and mask logits float (B, N, H, W) of the (N, B, C) queries:
        ``class_embed`` and the dot product of the mask embedding with the per-pixel embeddings."""
        decoded = self.decoder_norm(output).transpose(0, 1)
        return self.class_embed(decoded), self._mask_logits(self.mask_embed(decoded), mask_features)

    def _mask_logits(self, mask_embedding: Tensor, mask_features: Tensor) -> Tensor:
        """The mask logits (B, N, H, W): the dot product of each query's mask embedding (B, N, mask_dim)
        with the per-pixel embeddings (B, mask_dim, H, W). A subclass whose queries predict other
        masks (e.g. the video decoder's mask tubes) overrides this."""
        return torch.einsum("bqc,bchw->bqhw", mask_embedding, mask_features)

    def _attention_mask(self, output: Tensor, mask_features: Tensor, size: Sequence[int],
                        level_features: Dict[str, Tensor]) -> Tensor:
        """The attention mask of the queries' prediction at inference: the mask computed only at the
        level's resolution, from the per-pixel embeddings resized to it (cached in
        ``level_features``). Bilinear resizing is linear, so this equals resizing the full mask,
        up to float rounding."""
        size = (size[0], size[1])
        # the sizes' text is the key: symbolic sizes (torch.export) are not hashable, and int() would fix
        # them to the traced image's
        key = str(size)
        if key not in level_features:
            level_features[key] = F.interpolate(mask_features, size=size, mode="bilinear", align_corners=False)
        embedding = self.mask_embed(self.decoder_norm(output).transpose(0, 1))
        return masked_attention_mask(self._mask_logits(embedding, level_features[key]), size, self.num_heads)

    def _check_inputs(self, x: Sequence[Tensor], mask_features: Tensor) -> None:
        if not isinstance(x, (list, tuple)) or len(x) != self.num_feature_levels:
            got = f"{len(x)} entries" if isinstance(x, (list, tuple)) else type(x).__name__
            raise ValueError(f"{type(self).__name__}.forward: x must be a list of {self.num_feature_levels} "
                             f"multi-scale features (coarsest first), got {got}")
        if mask_features.dim() != 4 or mask_features.shape[1] != self.mask_dim:
            raise ValueError(f"{type(self).__name__}.forward: mask_features must be (B, mask_dim={self.mask_dim}, "
                             f"H, W), got shape {tuple(mask_features.shape)}")
        for i, feature in enumerate(x):
            if feature.dim() != 4 or feature.shape[1] != self.in_channels or feature.shape[0] != mask_features.shape[0]:
                raise ValueError(f"{type(self).__name__}.forward: x[{i}] must be (B={mask_features.shape[0]}, "
                                 f"in_channels={self.in_channels}, H, W), got shape {tuple(feature.shape)}")

    def _prepare_memory(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[torch.Size]]:
        """Per level: projected features + level embedding and sine positions, both (H_l W_l, B, C), and (H_l, W_l)."""
        src, pos, sizes = [], [], []
        for i, feature in enumerate(x):
            sizes.append(feature.shape[-2:])
            pos.append(self.pe_layer(feature, None).flatten(2).permute(2, 0, 1))
            projected = self.input_proj[i](feature).flatten(2) + self.level_embed.weight[i][None, :, None]
            src.append(projected.permute(2, 0, 1))
        return src, pos, sizes

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Rename ``static_query`` (state-dict version 1, early checkpoints) to ``query_feat``."""
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            old_keys = [k for k in state_dict if k.startswith(prefix + "static_query.")]
            for key in old_keys:
                state_dict[prefix + "query_feat." + key[len(prefix + "static_query."):]] = state_dict.pop(key)
            if old_keys:
                logging.getLogger(__name__).warning(
                    "%s: renamed %s to query_feat (an older checkpoint format)", type(self).__name__, old_keys)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
