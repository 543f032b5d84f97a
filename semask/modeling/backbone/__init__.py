"""SeMask's backbone: Swin with a Semantic Layer per stage (registers ``D2SeMaskSwinTransformer``)."""
from .semantic_layer import SemanticAttention, SemanticLayer
from .semask_swin import SEMANTIC_MAP_NAME, D2SeMaskSwinTransformer, SeMaskBasicLayer, semantic_window_stages

__all__ = ["D2SeMaskSwinTransformer", "SEMANTIC_MAP_NAME", "SeMaskBasicLayer", "SemanticAttention", "SemanticLayer",
           "semantic_window_stages"]
