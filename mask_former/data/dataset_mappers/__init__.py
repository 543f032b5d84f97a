"""MaskFormer dataset mappers, registered in ``segcore.data.DATASET_MAPPER_REGISTRY`` on import."""
from .mask_former_semantic_dataset_mapper import MaskFormerSemanticDatasetMapper

__all__ = ["MaskFormerSemanticDatasetMapper"]
