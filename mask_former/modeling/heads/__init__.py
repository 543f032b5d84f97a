from .mask_former_head import MaskFormerHead
from .pixel_decoder import BasePixelDecoder, build_pixel_decoder

__all__ = ["BasePixelDecoder", "MaskFormerHead", "build_pixel_decoder"]
