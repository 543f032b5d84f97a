from .position_encoding import PositionEmbeddingSine
from .transformer import Transformer
from .transformer_predictor import MLP, TransformerPredictor

__all__ = ["MLP", "PositionEmbeddingSine", "Transformer", "TransformerPredictor"]
