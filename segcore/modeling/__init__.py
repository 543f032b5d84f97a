"""Model building blocks: registries, backbones, meta-architectures, post-processing."""
from segcore.layers import ShapeSpec

from .backbone import BACKBONE_REGISTRY, Backbone, ResNet, build_backbone, build_resnet_backbone
from .meta_arch import (META_ARCH_REGISTRY, SEM_SEG_HEADS_REGISTRY, SemanticSegmentor, SemSegFPNHead, build_model,
                        build_sem_seg_head)
from .postprocessing import sem_seg_postprocess

__all__ = ["BACKBONE_REGISTRY", "Backbone", "META_ARCH_REGISTRY", "ResNet", "SEM_SEG_HEADS_REGISTRY",
           "SemSegFPNHead", "SemanticSegmentor", "ShapeSpec", "build_backbone", "build_model", "build_resnet_backbone",
           "build_sem_seg_head", "sem_seg_postprocess"]
