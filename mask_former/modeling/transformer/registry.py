"""TRANSFORMER_DECODER_REGISTRY: the query decoders of the mask-classification heads, by name.

Chosen by ``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME`` (as Mask2Former's
``mask2former/modeling/transformer_decoder``): MaskFormer's DETR-style decoder is registered as
``"StandardTransformerDecoder"`` (the default); later families register theirs (Mask2Former's
``"MultiScaleMaskedTransformerDecoder"``).
"""
from __future__ import annotations

from torch import nn

from segcore.utils.registry import NamedRegistry, get_registered

__all__ = ["TRANSFORMER_DECODER_REGISTRY", "build_transformer_decoder"]

TRANSFORMER_DECODER_REGISTRY = NamedRegistry("TRANSFORMER_MODULE")
TRANSFORMER_DECODER_REGISTRY.__doc__ = """
Registry for the transformer decoders of mask classification. A registered class is called as
``cls(cfg, in_channels, mask_classification)`` and its instances as
``decoder(x, mask_features, mask=None)`` -> ``{"pred_logits", "pred_masks", "aux_outputs"}``.
A decoder class may name the set criterion it is trained with in a class attribute
``criterion_name`` (a name in ``mask_former.modeling.CRITERION_REGISTRY``).
"""


def build_transformer_decoder(cfg, in_channels: int, mask_classification: bool = True) -> nn.Module:
    """Build the decoder named by ``cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``.

    Args:
        cfg: the config.
        in_channels: channels of the decoder's input (see ``heads.feature_routing``).
        mask_classification: predict class logits (False: masks only, the PerPixelBaseline+ head).

    Raises:
        KeyError: the name is not registered (the message lists the registered decoders).
    """
    name = cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME
    decoder_cls = get_registered(TRANSFORMER_DECODER_REGISTRY, name, "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME")
    return decoder_cls(cfg, in_channels, mask_classification)
