from . import backbone  # registers D2SwinTransformer
from .criterion import CRITERION_REGISTRY, SetCriterion, loss_weight_dict
from .heads import (BasePixelDecoder, MaskFormerHead, PerPixelBaselineHead, PerPixelBaselinePlusHead, PixelDecoderHead,
                    PixelDecoderOutput, TransformerEncoderPixelDecoder, build_pixel_decoder)
from .matcher import HungarianMatcher
from .transformer import (TRANSFORMER_DECODER_REGISTRY, StandardTransformerDecoder, TransformerPredictor,
                          build_transformer_decoder)

__all__ = ["BasePixelDecoder", "CRITERION_REGISTRY", "HungarianMatcher", "MaskFormerHead", "PerPixelBaselineHead",
           "PerPixelBaselinePlusHead", "PixelDecoderHead", "PixelDecoderOutput", "SetCriterion",
           "StandardTransformerDecoder", "TRANSFORMER_DECODER_REGISTRY", "TransformerEncoderPixelDecoder",
           "TransformerPredictor", "build_pixel_decoder", "build_transformer_decoder", "loss_weight_dict"]
