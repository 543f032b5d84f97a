"""The video model's parts. Importing this package registers ``"VideoMultiScaleMaskedTransformerDecoder"``
(:data:`mask_former.modeling.TRANSFORMER_DECODER_REGISTRY`) and ``"VideoSetCriterion"``
(:data:`mask_former.modeling.criterion.CRITERION_REGISTRY`)."""
from .criterion import VideoSetCriterion
from .matcher import VideoHungarianMatcher
from .position_encoding import PositionEmbeddingSine3D
from .video_masked_attention_decoder import VideoMultiScaleMaskedTransformerDecoder

__all__ = ["PositionEmbeddingSine3D", "VideoHungarianMatcher", "VideoMultiScaleMaskedTransformerDecoder",
           "VideoSetCriterion"]
