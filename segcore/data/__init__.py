"""Data: dataset catalogs, built-in datasets, readers, augmentations, mappers and loaders (Detectron2's ``detectron2.data``).

Importing this package registers the built-in datasets (``ade20k_sem_seg_train``, ...).
"""
from . import transforms  # isort:skip
from . import detection_utils, samplers
from .build import (
    TrainLoader,
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
    trivial_batch_collator,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog, UnknownDatasetError
from .common import AspectRatioGroupedDataset, DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .mapper_registry import DATASET_MAPPER_REGISTRY, build_dataset_mapper

# ensure the built-in datasets (and the generated quickstart datasets) are registered
from . import datasets  # isort:skip
from . import quickstart  # isort:skip

__all__ = [
    "AspectRatioGroupedDataset",
    "DATASET_MAPPER_REGISTRY",
    "DatasetCatalog",
    "DatasetFromList",
    "DatasetMapper",
    "MapDataset",
    "Metadata",
    "MetadataCatalog",
    "TrainLoader",
    "UnknownDatasetError",
    "build_batch_data_loader",
    "build_dataset_mapper",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "datasets",
    "detection_utils",
    "get_detection_dataset_dicts",
    "samplers",
    "transforms",
    "trivial_batch_collator",
]
