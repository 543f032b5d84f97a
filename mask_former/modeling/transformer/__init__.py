from .attention import multi_head_attention
from .final_predictions import final_predictions_only
from .position_encoding import PositionEmbeddingSine
from .registry import TRANSFORMER_DECODER_REGISTRY, build_transformer_decoder
from .transformer import Transformer
from .transformer_predictor import MLP, StandardTransformerDecoder, TransformerPredictor

__all__ = ["MLP", "PositionEmbeddingSine", "StandardTransformerDecoder", "TRANSFORMER_DECODER_REGISTRY", "Transformer",
           "TransformerPredictor", "build_transformer_decoder", "final_predictions_only", "multi_head_attention"]
