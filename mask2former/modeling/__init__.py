"""Mask2Former's modules; importing this package registers them: the ``MSDeformAttnPixelDecoder``
(``SEM_SEG_HEADS_REGISTRY``), the ``MultiScaleMaskedTransformerDecoder``
(``TRANSFORMER_DECODER_REGISTRY``) and the ``PointSampledSetCriterion`` (``CRITERION_REGISTRY``)."""
from .criterion import PointSampledSetCriterion
from .matcher import PointSampledHungarianMatcher
from .pixel_decoder import MSDeformAttnPixelDecoder
from .transformer_decoder import MultiScaleMaskedTransformerDecoder

__all__ = ["MSDeformAttnPixelDecoder", "MultiScaleMaskedTransformerDecoder", "PointSampledHungarianMatcher",
           "PointSampledSetCriterion"]
