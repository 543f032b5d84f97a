"""Mask2Former's transformer decoder (Sec. 3.2). Importing this package registers
``"MultiScaleMaskedTransformerDecoder"`` in :data:`mask_former.modeling.TRANSFORMER_DECODER_REGISTRY`."""
from .attention_layers import CrossAttentionLayer, FFNLayer, ResidualNormLayer, SelfAttentionLayer
from .masked_attention_decoder import MultiScaleMaskedTransformerDecoder, masked_attention_mask

__all__ = ["CrossAttentionLayer", "FFNLayer", "MultiScaleMaskedTransformerDecoder", "ResidualNormLayer",
           "SelfAttentionLayer", "masked_attention_mask"]
