"""Inference without the intermediate predictions that only the training losses read.

The transformer decoders predict classes and masks after every layer (deep supervision, the
``aux_outputs``), each mask at the per-pixel embeddings' resolution (1/4 of the input). Inference
reads only the last prediction, so :class:`~mask_former.MaskFormer` runs its head inside
:func:`final_predictions_only`, and the decoders that declare ``final_predictions_only`` (a class
attribute, False by default) then skip what only the losses need:

- MaskFormer's decoder (:class:`~mask_former.modeling.TransformerPredictor`) computes the masks
  and classes of the last layer only;
- Mask2Former's (``MultiScaleMaskedTransformerDecoder``) computes the intermediate masks only at
  the resolution their masked attention reads (1/32, 1/16, 1/8) from the per-pixel embeddings
  resized to it: bilinear resizing is linear, so resizing the embeddings before the dot product
  with the mask embedding gives the masks that resizing after it gives, up to float rounding.

Called directly (as in the parity tests), a decoder returns everything, as the original.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

__all__ = ["final_predictions_only"]


@contextmanager
def final_predictions_only(module: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, every submodule of ``module`` (itself included) whose class declares a
    ``final_predictions_only`` attribute has it set to ``enabled``; the previous values are
    restored on exit.

    Such a decoder then returns ``{"pred_logits", "pred_masks"}`` of its last layer only (no
    ``aux_outputs``) and skips the work only the other predictions need.
    """
    decoders = [m for m in module.modules() if hasattr(type(m), "final_predictions_only")]
    previous = [m.final_predictions_only for m in decoders]
    for m in decoders:
        m.final_predictions_only = enabled
    try:
        yield
    finally:
        for m, value in zip(decoders, previous):
            m.final_predictions_only = value
