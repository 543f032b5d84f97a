"""Model building blocks: registries, backbones, meta-architectures, post-processing, test-time augmentation."""
from segcore.layers import ShapeSpec

from .backbone import BACKBONE_REGISTRY, Backbone, ResNet, build_backbone, build_resnet_backbone
from .meta_arch import (META_ARCH_REGISTRY, SEM_SEG_HEADS_REGISTRY, SemanticSegmentor, SemSegFPNHead, build_model,
                        build_sem_seg_head, model_output_tasks)
from .postprocessing import sem_seg_postprocess
from .preprocessing import preprocess_images, register_pixel_normalization
from .test_time_augmentation import DatasetMapperTTA, SemanticSegmentorWithTTA

__all__ = ["BACKBONE_REGISTRY", "Backbone", "DatasetMapperTTA", "META_ARCH_REGISTRY", "ResNet",
           "SEM_SEG_HEADS_REGISTRY", "SemSegFPNHead", "SemanticSegmentor", "SemanticSegmentorWithTTA", "ShapeSpec",
           "build_backbone", "build_model", "build_resnet_backbone", "build_sem_seg_head", "model_output_tasks",
           "preprocess_images", "register_pixel_normalization", "sem_seg_postprocess"]
