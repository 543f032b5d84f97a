"""Mask2Former for video instance segmentation (Cheng et al., "Mask2Former for Video Instance
Segmentation", arXiv 2112.10764), built on :mod:`mask2former`, :mod:`mask_former` and :mod:`segcore`.

Importing this package registers its components under the original names: the meta-architecture
``VideoMaskFormer`` (:data:`segcore.modeling.META_ARCH_REGISTRY`), the transformer decoder
``VideoMultiScaleMaskedTransformerDecoder`` and its criterion ``VideoSetCriterion``, the clip mapper
``"ytvis"`` (:data:`segcore.data.DATASET_MAPPER_REGISTRY`) and the ``"ytvis"`` evaluator
(:data:`segcore.evaluation.EVALUATOR_REGISTRY`). The YouTube-VIS 2019 / 2021 and OVIS datasets are
registered by ``segcore.data`` (:mod:`segcore.data.datasets.ytvis`).
"""
import mask2former  # noqa: F401  (registers the pixel decoder and the image decoder it extends)

from . import data  # noqa: F401  (registers the clip mapper)
from . import evaluation  # noqa: F401  (registers the ytvis evaluator)
from . import modeling  # noqa: F401  (registers the video decoder and criterion)
from .config import add_maskformer2_video_config
from .data import YTVISDatasetMapper
from .evaluation import YTVISEvaluator
from .inference import VideoInstancePostProcessor, WindowedVideoInference, frame_instances
from .video_maskformer_model import VideoMaskFormer

__all__ = ["VideoInstancePostProcessor", "VideoMaskFormer", "WindowedVideoInference", "YTVISDatasetMapper",
           "YTVISEvaluator", "add_maskformer2_video_config", "frame_instances"]
