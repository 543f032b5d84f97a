from .build import META_ARCH_REGISTRY, build_model, model_output_tasks
from .semantic_seg import SEM_SEG_HEADS_REGISTRY, SemanticSegmentor, SemSegFPNHead, build_sem_seg_head

__all__ = ["META_ARCH_REGISTRY", "SEM_SEG_HEADS_REGISTRY", "SemSegFPNHead", "SemanticSegmentor", "build_model",
           "build_sem_seg_head", "model_output_tasks"]
