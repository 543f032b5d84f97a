"""SeMask Swin: the Swin Transformer backbone with a Semantic Layer after every stage's blocks.

Jain et al., "SeMask: Semantically Masked Transformers for Semantic Segmentation" (2021), Sec. 3.
This extends :mod:`mask_former.modeling.backbone.swin` (patch embedding, Swin blocks, patch
merging and the per-stage output norms are that module's): each stage runs its Swin blocks, then
its :class:`~semask.modeling.backbone.semantic_layer.SemanticLayer`, whose output feeds both the
stage's output norm (``res{i+2}``) and the patch merging into the next stage. The semantic maps of
the stages (K class scores per token, not normalized) are returned next to the features as
``res{i+2}_sem_seg`` (B, K, H_i, W_i) (see :class:`D2SeMaskSwinTransformer`).

State-dict names equal the original ``D2SeMaskSwinTransformer``'s: the Swin names plus
``layers.{i}.semantic_layer.norm1`` and ``layers.{i}.semantic_layer.class_injection.{j}.*``, in
the original order (blocks, semantic layer, downsampling).
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import nn

from mask_former.modeling.backbone.swin import BasicLayer, D2SwinTransformer, StageOutput, SwinTransformer
from segcore.config import configurable
from segcore.layers import ShapeSpec
from segcore.modeling import BACKBONE_REGISTRY

from .semantic_layer import SemanticLayer

__all__ = ["D2SeMaskSwinTransformer", "SEMANTIC_MAP_NAME", "SeMaskBasicLayer", "semantic_window_stages"]

#: The name of a stage's semantic map among the backbone outputs: ``res{i}_`` + this.
SEMANTIC_MAP_NAME = "sem_seg"

#: ADE20K-150, the dataset whose number of classes keeps the last stage's Semantic Layer global
#: in the original SeMask-Mask2Former (see :func:`semantic_window_stages`).
_ADE20K_NUM_CLASSES = 150

_DEFAULT_DEPTHS = inspect.signature(SwinTransformer.__init__).parameters["depths"].default


def semantic_window_stages(num_classes: int, num_stages: int = 4) -> Tuple[int, ...]:
    """The stages whose Semantic Layer attends within windows; the others attend over the whole map.

    The original SeMask-Mask2Former backbone decides by the number of classes: with 150 (ADE20K)
    all stages but the last use windows, with any other number (e.g. Cityscapes' 19) every stage
    does. SeMask-MaskFormer, released for ADE20K only, always keeps the last stage global; both
    agree on every released config. Pass ``windowed_semantic_stages`` to
    :class:`D2SeMaskSwinTransformer` to choose otherwise.

    Args:
        num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``).
        num_stages: the number of Swin stages.

    Returns:
        the 0-based indices of the windowed stages.
    """
    if num_classes == _ADE20K_NUM_CLASSES:
        return tuple(range(num_stages - 1))
    return tuple(range(num_stages))


class SeMaskBasicLayer(BasicLayer):
    """A SeMask stage (Sec. 3): the Swin blocks of :class:`BasicLayer`, then a :class:`SemanticLayer`,
    then the downsampling.

    Args:
        num_classes: K, the classes of the semantic map.
        num_sem_blocks: N_S, SeMask attention blocks of the Semantic Layer.
        sem_window_size: the Semantic Layer's window side (tokens), or None for global attention.
        downsample: as :class:`BasicLayer` (applied to the Semantic Layer's output).
        kwargs: the other :class:`BasicLayer` arguments (dim, depth, num_heads, ...).

    ``layer(x, H, W)`` returns a :class:`StageOutput` whose ``extras`` hold
    ``{"sem_seg": (B, H*W, K)}``.
    """

    def __init__(self, *, num_classes: int, num_sem_blocks: int = 1, sem_window_size: Optional[int] = 7,
                 downsample: Optional[Callable[..., nn.Module]] = None, **kwargs):
        super().__init__(downsample=None, **kwargs)
        self.semantic_layer = SemanticLayer(dim=kwargs["dim"], num_classes=num_classes, num_blocks=num_sem_blocks,
                                            window_size=sem_window_size)
        # registered after the semantic layer: the original's module (and state-dict) order
        self.downsample = downsample(dim=kwargs["dim"]) if downsample is not None else None

    def forward(self, x: torch.Tensor, height: int, width: int) -> StageOutput:
        """
        Args:
            x: the stage input, (B, H*W, C) row-major tokens.
            height, width: the map size H, W in tokens.

        Returns:
            :class:`StageOutput` with ``out`` (B, H*W, C), ``extras["sem_seg"]`` (B, H*W, K) and
            the downsampled input of the next stage.
        """
        blocks = self.forward_blocks(x, height, width)
        semantic_map, out = self.semantic_layer(blocks, height, width)
        return StageOutput(out, {SEMANTIC_MAP_NAME: semantic_map}, *self.forward_downsample(out, height, width))


@BACKBONE_REGISTRY.register()
class D2SeMaskSwinTransformer(D2SwinTransformer):
    """SeMask Swin as a Detectron2-style backbone (the original's registered name).

    Returns the features of :class:`~mask_former.modeling.backbone.swin.D2SwinTransformer`
    (``res2`` .. ``res5`` of ``out_features``, normalized by ``norm{i}``) and, for each of them,
    the stage's semantic map ``"res{i}_sem_seg"`` (B, K, H_i, W_i) float logits, unnormalized.
    ``output_shape()`` lists the features only (heads are built from it as for Swin); a SeMask
    head reads the semantic maps by name. Configured by ``MODEL.SWIN.*`` (with
    ``SEM_WINDOW_SIZE``, ``NUM_SEM_BLOCKS``) and ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``.

    Args:
        num_classes: K.
        num_sem_blocks: N_S >= 1 per stage.
        sem_window_size: window side (tokens) of the windowed Semantic Layers.
        windowed_semantic_stages: the stages whose Semantic Layer attends within windows (the
            others attend globally); None: :func:`semantic_window_stages` of ``num_classes``.
        kwargs: the arguments of :class:`D2SwinTransformer` (out_features, embed_dim, depths, ...).

    Raises:
        ValueError: ``num_sem_blocks`` < 1, ``sem_window_size`` < 1, a windowed stage index out
            of range, or what :class:`D2SwinTransformer` raises.
    """

    @configurable
    def __init__(self, *, num_classes: int, num_sem_blocks: int = 1, sem_window_size: int = 7,
                 windowed_semantic_stages: Optional[Sequence[int]] = None, **kwargs):
        num_stages = len(kwargs.get("depths", _DEFAULT_DEPTHS))
        if windowed_semantic_stages is None:
            windowed_semantic_stages = semantic_window_stages(num_classes, num_stages)
        unknown = [i for i in windowed_semantic_stages if not 0 <= i < num_stages]
        if unknown:
            raise ValueError(f"D2SeMaskSwinTransformer: windowed_semantic_stages {unknown} are not stages of a "
                             f"{num_stages}-stage Swin")
        # read by build_layer, which runs inside super().__init__
        self.num_classes = num_classes
        self.num_sem_blocks = num_sem_blocks
        self.sem_window_size = sem_window_size
        self.windowed_semantic_stages = tuple(windowed_semantic_stages)
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[ShapeSpec] = None) -> dict:
        args = super().from_config(cfg, input_shape)
        if "SEM_WINDOW_SIZE" not in cfg.MODEL.SWIN:
            raise KeyError("D2SeMaskSwinTransformer needs MODEL.SWIN.SEM_WINDOW_SIZE and NUM_SEM_BLOCKS: "
                           "call semask.add_semask_config(cfg) first")
        args.update(num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, num_sem_blocks=cfg.MODEL.SWIN.NUM_SEM_BLOCKS,
                    sem_window_size=cfg.MODEL.SWIN.SEM_WINDOW_SIZE, windowed_semantic_stages=None)
        return args

    def build_layer(self, index: int, **kwargs) -> nn.Module:
        """Stage ``index`` as a :class:`SeMaskBasicLayer` (windowed or global Semantic Layer)."""
        window = self.sem_window_size if index in self.windowed_semantic_stages else None
        return SeMaskBasicLayer(num_classes=self.num_classes, num_sem_blocks=self.num_sem_blocks,
                                sem_window_size=window, **kwargs)
