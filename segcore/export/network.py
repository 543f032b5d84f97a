"""The network that is exported: one image in 0-255 pixel values in, the mask-classification
predictions (and optionally the semantic scores) out, with normalization and padding inside."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from segcore.layers import ceil_to_multiple

__all__ = ["ExportableNetwork", "padded_size"]


def padded_size(height, width, size_divisibility: int):
    """(Hp, Wp): ``height`` and ``width`` rounded up to a multiple of ``size_divisibility`` (as
    :meth:`segcore.structures.ImageList.from_tensors` pads; no rounding when it is <= 1). Works on
    Python and symbolic integers alike (:func:`segcore.layers.ceil_to_multiple`)."""
    return ceil_to_multiple(height, size_divisibility), ceil_to_multiple(width, size_divisibility)


class ExportableNetwork(nn.Module):
    """A mask-classification model's network with a tensor-only interface, the module that
    :mod:`segcore.export` traces.

    Args:
        model: a ``MaskFormer``-like meta-architecture in eval mode: attributes ``backbone``,
            ``sem_seg_head`` (returns ``pred_logits`` / ``pred_masks``), ``pixel_mean``,
            ``pixel_std`` (C, 1, 1) and ``size_divisibility``.
        semantic: also return the semantic scores (MaskFormer Sec. 3.4).

    ``forward(image)``: image float32 (1, 3, H, W), pixel values 0..255 in the model's
    ``INPUT.FORMAT`` channel order. Returns a tuple ``(pred_logits (1, Q, K+1), pred_masks (1, Q,
    Hp/4, Wp/4))`` (with the model's mask stride), and with ``semantic`` a third tensor ``sem_seg``
    (K, H, W) float32: ``sum_q softmax(logits_q)[:K] * sigmoid(mask_q)``, the masks upsampled
    bilinearly to (Hp, Wp) and cropped to (H, W), as
    :class:`mask_former.inference.MaskFormerPostProcessor` computes it at the image's size.

    The image is normalized with the model's ``(x - mean) / std`` and padded with 0 at the bottom
    and right to a multiple of ``size_divisibility``, as ``ImageList.from_tensors`` pads the
    normalized image: the outputs equal the eager model's for the same image.
    """

    #: the names of the outputs, in order (``sem_seg`` only with ``semantic``)
    OUTPUT_NAMES = ("pred_logits", "pred_masks", "sem_seg")

    def __init__(self, model: nn.Module, *, semantic: bool = False):
        super().__init__()
        self.backbone = model.backbone
        self.sem_seg_head = model.sem_seg_head
        self.register_buffer("pixel_mean", model.pixel_mean.detach().clone().float(), False)
        self.register_buffer("pixel_std", model.pixel_std.detach().clone().float(), False)
        self.size_divisibility = int(model.size_divisibility)
        self.semantic = bool(semantic)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return self.OUTPUT_NAMES if self.semantic else self.OUTPUT_NAMES[:2]

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        from mask_former.modeling.transformer.final_predictions import final_predictions_only

        height, width = image.shape[-2], image.shape[-1]
        padded_h, padded_w = padded_size(height, width, self.size_divisibility)
        x = (image - self.pixel_mean) / self.pixel_std
        x = F.pad(x, [0, padded_w - width, 0, padded_h - height], value=0.0)
        with final_predictions_only(self.sem_seg_head):
            outputs: Dict[str, Tensor] = self.sem_seg_head(self.backbone(x))
        pred_logits, pred_masks = outputs["pred_logits"].float(), outputs["pred_masks"].float()
        if not self.semantic:
            return pred_logits, pred_masks
        masks = F.interpolate(pred_masks, size=(padded_h, padded_w), mode="bilinear", align_corners=False)
        # the crop to (H, W) as a gather rather than a slice: a slice is a view whose layout depends on
        # whether any padding was added, which torch.export would fix to the traced image's case
        rows = torch.arange(height, device=masks.device)
        cols = torch.arange(width, device=masks.device)
        masks = masks[0].index_select(1, rows).index_select(2, cols).sigmoid()  # (Q, H, W)
        class_prob = F.softmax(pred_logits[0], dim=-1)[:, :-1]  # (Q, K)
        sem_seg = torch.mm(class_prob.t(), masks.reshape(masks.shape[0], -1)).reshape(-1, height, width)
        return pred_logits, pred_masks, sem_seg
