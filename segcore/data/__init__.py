"""Data: dataset catalogs, built-in datasets, readers, augmentations, mappers and loaders (Detectron2's ``detectron2.data``).

Importing this package registers the built-in datasets (``ade20k_sem_seg_train``, ...,
and the quickstart's ``quickstart_sem_seg_train``, ...). The quickstart's generator is the separate
package ``segcore.quickstart``, which nothing here imports.
"""
from . import transforms  # isort:skip
from . import detection_utils, samplers
from .build import (
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog, UnknownDatasetError
from .common import AspectRatioGroupedDataset, DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .mapper_registry import DATASET_MAPPER_REGISTRY, build_dataset_mapper
from .train_loader import TrainLoader, trivial_batch_collator

# ensure the built-in datasets are registered
from . import datasets  # isort:skip

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
