from . import backbone  # registers D2SwinTransformer
from .criterion import SetCriterion
from .heads import BasePixelDecoder, MaskFormerHead, build_pixel_decoder
from .matcher import HungarianMatcher
from .transformer import TransformerPredictor

__all__ = ["BasePixelDecoder", "HungarianMatcher", "MaskFormerHead", "SetCriterion", "TransformerPredictor",
           "build_pixel_decoder"]
