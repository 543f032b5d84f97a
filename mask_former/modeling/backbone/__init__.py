"""Backbones of the MaskFormer family; importing this registers ``D2SwinTransformer``."""
from .swin import D2SwinTransformer, SwinTransformer

__all__ = ["D2SwinTransformer", "SwinTransformer"]
