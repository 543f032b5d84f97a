from .feature_routing import PixelDecoderOutput, select_transformer_input, transformer_in_channels
from .mask_former_head import MaskFormerHead
from .per_pixel_baseline import PerPixelBaselineHead, PerPixelBaselinePlusHead
from .pixel_decoder import BasePixelDecoder, build_pixel_decoder
from .pixel_decoder_head import PixelDecoderHead
from .transformer_encoder_pixel_decoder import TransformerEncoderPixelDecoder

__all__ = ["BasePixelDecoder", "MaskFormerHead", "PerPixelBaselineHead", "PerPixelBaselinePlusHead", "PixelDecoderHead",
           "PixelDecoderOutput", "TransformerEncoderPixelDecoder", "build_pixel_decoder", "select_transformer_input",
           "transformer_in_channels"]
