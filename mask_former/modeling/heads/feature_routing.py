"""Which features the transformer decoder reads (``MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE``).

Shared by every head that pairs a pixel decoder with a transformer decoder (MaskFormerHead, the
per-pixel baseline "+" head, and the later families' heads), so that the choice is made in one
place:

* a backbone feature name (``"res5"``): the backbone's map (MaskFormer, Sec. 3.3);
* ``"transformer_encoder"``: the pixel decoder's transformer-encoder output (MaskFormer's
  "+ 6 Enc" models, :class:`TransformerEncoderPixelDecoder`);
* ``"pixel_embedding"``: the per-pixel embeddings (mask features) themselves;
* ``"multi_scale_pixel_decoder"``: the pixel decoder's list of multi-scale features (Mask2Former's
  masked-attention decoder, Sec. 3.2.2).
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Union

import torch

from segcore.layers import ShapeSpec

__all__ = ["PIXEL_DECODER_INPUTS", "PixelDecoderOutput", "select_transformer_input", "transformer_in_channels"]

#: the values of TRANSFORMER_IN_FEATURE that name a pixel-decoder output rather than a backbone feature
PIXEL_DECODER_INPUTS = ("transformer_encoder", "pixel_embedding", "multi_scale_pixel_decoder")


class PixelDecoderOutput(NamedTuple):
    """What a pixel decoder's ``forward_features(features)`` returns.

    Attributes:
        mask_features: (B, mask_dim, H/4, W/4) per-pixel embeddings.
        transformer_encoder_features: (B, conv_dim, h, w) output of the decoder's transformer
            encoder, or None for a decoder without one.
        multi_scale_features: the FPN levels the transformer decoder may read, coarsest first,
            each (B, conv_dim, H/s, W/s); empty when the decoder provides none.
    """

    mask_features: torch.Tensor
    transformer_encoder_features: Optional[torch.Tensor]
    multi_scale_features: List[torch.Tensor]


def transformer_in_channels(in_feature: str, input_shape: Dict[str, ShapeSpec], *, conv_dim: int,
                            mask_dim: int) -> int:
    """Channels of the input the transformer decoder reads.

    Args:
        in_feature: ``TRANSFORMER_IN_FEATURE`` (see the module docstring).
        input_shape: the backbone's ``{name: ShapeSpec}``.
        conv_dim: the pixel decoder's width (``SEM_SEG_HEAD.CONVS_DIM``).
        mask_dim: the mask-embedding width (``SEM_SEG_HEAD.MASK_DIM``).

    Raises:
        ValueError: ``in_feature`` is neither a backbone output nor one of :data:`PIXEL_DECODER_INPUTS`.
    """
    if in_feature in ("transformer_encoder", "multi_scale_pixel_decoder"):
        return conv_dim
    if in_feature == "pixel_embedding":
        return mask_dim
    if in_feature in input_shape:
        return input_shape[in_feature].channels
    raise ValueError(f"MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE='{in_feature}' is not a backbone output "
                     f"({sorted(input_shape)}) nor one of {list(PIXEL_DECODER_INPUTS)}")


def select_transformer_input(in_feature: str, features: Dict[str, torch.Tensor],
                             decoder_output: PixelDecoderOutput) -> Union[torch.Tensor, List[torch.Tensor]]:
    """The transformer decoder's input: a (B, C, h, w) map, or the multi-scale list.

    Args:
        in_feature: ``TRANSFORMER_IN_FEATURE``.
        features: the backbone's outputs.
        decoder_output: the pixel decoder's :class:`PixelDecoderOutput`.

    Raises:
        ValueError: the pixel decoder does not provide what ``in_feature`` asks for (no encoder,
            no multi-scale features), or the backbone has no such feature.
    """
    if in_feature == "transformer_encoder":
        if decoder_output.transformer_encoder_features is None:
            raise ValueError("TRANSFORMER_IN_FEATURE='transformer_encoder' needs a pixel decoder with an encoder "
                             "(MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME='TransformerEncoderPixelDecoder')")
        return decoder_output.transformer_encoder_features
    if in_feature == "pixel_embedding":
        return decoder_output.mask_features
    if in_feature == "multi_scale_pixel_decoder":
        if not decoder_output.multi_scale_features:
            raise ValueError("TRANSFORMER_IN_FEATURE='multi_scale_pixel_decoder' needs a pixel decoder that "
                             "returns multi-scale features")
        return decoder_output.multi_scale_features
    if in_feature not in features:
        raise ValueError(f"TRANSFORMER_IN_FEATURE='{in_feature}' is not among the backbone outputs {sorted(features)}")
    return features[in_feature]
