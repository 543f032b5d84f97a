"""Mask2Former's pixel decoders; importing this package registers ``MSDeformAttnPixelDecoder`` in
``SEM_SEG_HEADS_REGISTRY`` (built by ``mask_former.modeling.build_pixel_decoder`` from
``MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME``)."""
from .msdeformattn import MSDeformAttnPixelDecoder
from .msdeformattn_encoder import (MSDeformAttnTransformerEncoder, MSDeformAttnTransformerEncoderLayer,
                                   MSDeformAttnTransformerEncoderOnly)

__all__ = ["MSDeformAttnPixelDecoder", "MSDeformAttnTransformerEncoder", "MSDeformAttnTransformerEncoderLayer",
           "MSDeformAttnTransformerEncoderOnly"]
