from .mask_former_head import MaskFormerHead
from .per_pixel_baseline import PerPixelBaselineHead, PerPixelBaselinePlusHead
from .pixel_decoder import BasePixelDecoder, build_pixel_decoder
from .transformer_encoder_pixel_decoder import TransformerEncoderPixelDecoder

__all__ = ["BasePixelDecoder", "MaskFormerHead", "TransformerEncoderPixelDecoder", "build_pixel_decoder"]
