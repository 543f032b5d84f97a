"""Mask2Former data: the LSJ dataset mappers (importing this registers them in ``DATASET_MAPPER_REGISTRY``)."""
from . import dataset_mappers  # noqa: F401
from .dataset_mappers import COCOInstanceLSJDatasetMapper, COCOPanopticLSJDatasetMapper

__all__ = ["COCOInstanceLSJDatasetMapper", "COCOPanopticLSJDatasetMapper"]
