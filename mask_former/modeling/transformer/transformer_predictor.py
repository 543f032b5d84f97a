"""MaskFormer's transformer module and mask/class prediction (MaskFormer Sec. 3.3, Fig. 2)."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.layers import Conv2d, c2_xavier_fill

from .position_encoding import PositionEmbeddingSine
from .registry import TRANSFORMER_DECODER_REGISTRY
from .transformer import Transformer

__all__ = ["MLP", "StandardTransformerDecoder", "TransformerPredictor"]


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (the mask-embedding MLP, Sec. 3.3)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


@TRANSFORMER_DECODER_REGISTRY.register("StandardTransformerDecoder")
class TransformerPredictor(nn.Module):
    """N learnable queries decoded against one feature map into N (class, mask embedding) pairs.

    MaskFormer's transformer decoder (DETR's), registered as ``"StandardTransformerDecoder"``
    (``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``, the default) and trained with
    :class:`~mask_former.modeling.SetCriterion` (``criterion_name``).

    Per query: class logits over K + 1 labels (the last is "no object") and a mask embedding
    whose dot product with the per-pixel embeddings gives the binary mask logits (Sec. 3.3).

    Args:
        in_channels: channels of the feature map the transformer reads (e.g. 2048 for res5).
        mask_classification: predict class logits (MaskFormer) or masks only.
        num_classes: K. hidden_dim: transformer width. num_queries: N. nheads, dropout,
        dim_feedforward, enc_layers, dec_layers, pre_norm: transformer settings.
        deep_supervision: also return the predictions of every intermediate decoder layer.
        mask_dim: width of the mask embeddings (equals the pixel decoder's mask_dim).
        enforce_input_project: use a 1x1 projection even when in_channels == hidden_dim.

    ``forward(x, mask_features)``: x (B, in_channels, h, w); mask_features (B, mask_dim, H, W).
    Returns {"pred_logits": (B, N, K+1), "pred_masks": (B, N, H, W),
    "aux_outputs": [same for decoder layers 1..L-1]} (aux only with deep supervision, and not
    inside :func:`~mask_former.modeling.transformer.final_predictions.final_predictions_only`).
    """

    #: the set criterion this decoder is trained with (``CRITERION_REGISTRY`` name)
    criterion_name = "SetCriterion"
    #: return only the last layer's predictions (set by :func:`final_predictions_only` for inference)
    final_predictions_only = False

    @configurable
    def __init__(self, in_channels: int, mask_classification: bool = True, *, num_classes: int, hidden_dim: int,
                 num_queries: int, nheads: int, dropout: float, dim_feedforward: int, enc_layers: int,
                 dec_layers: int, pre_norm: bool, deep_supervision: bool, mask_dim: int,
                 enforce_input_project: bool):
        super().__init__()
        self.mask_classification = mask_classification
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.transformer = Transformer(d_model=hidden_dim, dropout=dropout, nhead=nheads,
                                       dim_feedforward=dim_feedforward, num_encoder_layers=enc_layers,
                                       num_decoder_layers=dec_layers, normalize_before=pre_norm,
                                       return_intermediate_dec=deep_supervision)
        self.num_queries = num_queries
        hidden_dim = self.transformer.d_model
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        if in_channels != hidden_dim or enforce_input_project:
            self.input_proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
            c2_xavier_fill(self.input_proj)
        else:
            self.input_proj = nn.Sequential()
        self.aux_loss = deep_supervision
        if self.mask_classification:
            self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)

    @classmethod
    def from_config(cls, cfg, in_channels: int, mask_classification: bool = True) -> dict:
        mf = cfg.MODEL.MASK_FORMER
        return {
            "in_channels": in_channels,
            "mask_classification": mask_classification,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "hidden_dim": mf.HIDDEN_DIM,
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "nheads": mf.NHEADS,
            "dropout": mf.DROPOUT,
            "dim_feedforward": mf.DIM_FEEDFORWARD,
            "enc_layers": mf.ENC_LAYERS,
            "dec_layers": mf.DEC_LAYERS,
            "pre_norm": mf.PRE_NORM,
            "deep_supervision": mf.DEEP_SUPERVISION,
            "enforce_input_project": mf.ENFORCE_INPUT_PROJ,
            "mask_dim": cfg.MODEL.SEM_SEG_HEAD.MASK_DIM,
        }

    def forward(self, x: torch.Tensor, mask_features: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        pos = self.pe_layer(x, mask)
        hs, _memory = self.transformer(self.input_proj(x), mask, self.query_embed.weight, pos)
        out: Dict = {}
        if self.final_predictions_only:
            # inference: the last layer's predictions only (see final_predictions_only)
            if self.mask_classification:
                out["pred_logits"] = self.class_embed(hs[-1])
            out["pred_masks"] = torch.einsum("bqc,bchw->bqhw", self.mask_embed(hs[-1]), mask_features)
            return out
        outputs_class = None
        if self.mask_classification:
            outputs_class = self.class_embed(hs)
            out["pred_logits"] = outputs_class[-1]
        if self.aux_loss:
            mask_embed = self.mask_embed(hs)  # (L, B, Q, C)
            outputs_seg_masks = torch.einsum("lbqc,bchw->lbqhw", mask_embed, mask_features)
            out["pred_masks"] = outputs_seg_masks[-1]
            out["aux_outputs"] = self._set_aux_loss(outputs_class, outputs_seg_masks)
        else:
            mask_embed = self.mask_embed(hs[-1])
            out["pred_masks"] = torch.einsum("bqc,bchw->bqhw", mask_embed, mask_features)
        return out

    @torch.jit.unused
    def _set_aux_loss(self, outputs_class: Optional[torch.Tensor], outputs_seg_masks: torch.Tensor) -> List[dict]:
        if outputs_class is not None:
            return [{"pred_logits": a, "pred_masks": b} for a, b in zip(outputs_class[:-1], outputs_seg_masks[:-1])]
        return [{"pred_masks": b} for b in outputs_seg_masks[:-1]]


#: Mask2Former's name for MaskFormer's decoder (the class is the same).
StandardTransformerDecoder = TransformerPredictor
