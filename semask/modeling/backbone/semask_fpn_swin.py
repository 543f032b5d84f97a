"""SeMask Swin as the SeMask-FPN models build it (the mmseg backbone ``SeMaskSwinTransformer``).

Jain et al., "SeMask: Semantically Masked Transformers for Semantic Segmentation" (2021), Sec. 3
and the Semantic-FPN rows of its main tables. The network, its parameters and its state-dict names
are those of :class:`~semask.modeling.backbone.semask_swin.D2SeMaskSwinTransformer`; what differs
is only which stages' Semantic Layers attend within windows. The SeMask-FPN release
(``SeMask-FPN/mmseg/models/backbones/semask_swin_transformer.py``) decides it from the width and
the number of classes (:func:`fpn_semantic_window_stages`), where SeMask-MaskFormer and
SeMask-Mask2Former decide from the number of classes alone
(:func:`~semask.modeling.backbone.semask_swin.semantic_window_stages`). The attention pattern has
no parameters, so a checkpoint loads either way, but only the right one reproduces its outputs.
"""
from __future__ import annotations

import inspect
from typing import Optional, Sequence, Tuple

from mask_former.modeling.backbone.swin import SwinTransformer
from segcore.config import configurable
from segcore.modeling import BACKBONE_REGISTRY

from .semask_swin import D2SeMaskSwinTransformer

__all__ = ["SeMaskSwinTransformer", "fpn_semantic_window_stages"]

#: Swin widths (C of stage 1: Swin-T/S and Swin-L) whose last stages the SeMask-FPN release makes
#: global when there are more classes than :data:`_MAX_CLASSES_ALL_WINDOWED`.
_WIDTHS_WITH_GLOBAL_LATE_STAGES = (96, 192)
#: Cityscapes' 19 classes: up to this many classes, every stage attends within windows.
_MAX_CLASSES_ALL_WINDOWED = 19
#: the stages that stay windowed otherwise (the first two)
_EARLY_STAGES = (0, 1)

_SWIN_DEFAULTS = inspect.signature(SwinTransformer.__init__).parameters


def fpn_semantic_window_stages(embed_dim: int, num_classes: int, num_stages: int = 4) -> Tuple[int, ...]:
    """The stages whose Semantic Layer attends within windows in the SeMask-FPN release.

    With a Swin-T/S/L width (``embed_dim`` 96 or 192) and more than 19 classes (ADE20K-150,
    COCO-Stuff), only the first two stages attend within windows and the last two attend over the
    whole map; otherwise (Swin-B's 128, or Cityscapes' 19 classes) every stage does.

    Args:
        embed_dim: C, the channels of the first stage (``MODEL.SWIN.EMBED_DIM``).
        num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``).
        num_stages: the number of Swin stages.

    Returns:
        the 0-based indices of the windowed stages.
    """
    if embed_dim in _WIDTHS_WITH_GLOBAL_LATE_STAGES and num_classes > _MAX_CLASSES_ALL_WINDOWED:
        return tuple(i for i in _EARLY_STAGES if i < num_stages)
    return tuple(range(num_stages))


@BACKBONE_REGISTRY.register()
class SeMaskSwinTransformer(D2SeMaskSwinTransformer):
    """The SeMask-FPN backbone (the mmseg release's registered name): :class:`D2SeMaskSwinTransformer`
    whose windowed Semantic Layers follow :func:`fpn_semantic_window_stages` by default.

    Outputs, arguments and errors are :class:`D2SeMaskSwinTransformer`'s: ``res2`` .. ``res5``
    (B, C * 2**i, H / 2**(i+2), W / 2**(i+2)) and their semantic maps ``res{i}_sem_seg``
    (B, K, ...); ``from_config`` is inherited (``MODEL.SWIN.*``, ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``).

    Args:
        windowed_semantic_stages: the stages whose Semantic Layer attends within windows; None
            (what a config gives): :func:`fpn_semantic_window_stages` of ``embed_dim`` and
            ``num_classes``.
        num_classes, kwargs: as :class:`D2SeMaskSwinTransformer`.
    """

    @configurable
    def __init__(self, *, num_classes: int, windowed_semantic_stages: Optional[Sequence[int]] = None, **kwargs):
        if windowed_semantic_stages is None:
            embed_dim = kwargs.get("embed_dim", _SWIN_DEFAULTS["embed_dim"].default)
            depths = kwargs.get("depths", _SWIN_DEFAULTS["depths"].default)
            windowed_semantic_stages = fpn_semantic_window_stages(embed_dim, num_classes, len(depths))
        super().__init__(num_classes=num_classes, windowed_semantic_stages=windowed_semantic_stages, **kwargs)
