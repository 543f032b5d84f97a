"""Mask2Former (Cheng et al., "Masked-attention Mask Transformer for Universal Image Segmentation",
CVPR 2022), built on :mod:`mask_former`.

Importing this package registers its components: the ``MSDeformAttnPixelDecoder``, the
``MultiScaleMaskedTransformerDecoder`` with its ``PointSampledSetCriterion``, and the LSJ dataset
mappers (``coco_instance_lsj``, ``coco_panoptic_lsj``). The meta-architecture is MaskFormer's
(``META_ARCHITECTURE: MaskFormer``, as in the original configs): the transformer decoder a config
names decides the criterion and the panoptic convention.
"""
from . import data  # noqa: F401  (registers the LSJ mappers)
from . import export  # noqa: F401  (declares ms_deform_attn to the exporters: segcore.export)
from . import modeling  # noqa: F401  (registers the pixel decoder, transformer decoder and criterion)
from .config import add_maskformer2_config
from .ops import MSDeformAttn, ms_deform_attn

__all__ = ["MSDeformAttn", "add_maskformer2_config", "ms_deform_attn"]
