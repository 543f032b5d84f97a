"""EVALUATOR_REGISTRY: dataset ``evaluator_type`` -> evaluator factory, and ``build_evaluator``.

Instead of an if/elif chain over evaluator types (as the original ``train_net.py`` files), each
type registers a factory::

    @EVALUATOR_REGISTRY.register("sem_seg")
    def sem_seg_evaluators(cfg, dataset_name, output_folder):
        return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder)

A factory returns one :class:`DatasetEvaluator` or a list of them (e.g. semantic + panoptic
evaluators for a panoptic dataset, chosen from ``cfg``). Model families register their types
when imported.
"""
from __future__ import annotations

import os

from segcore.utils.registry import NamedRegistry

from .evaluator import DatasetEvaluator, DatasetEvaluators

__all__ = ["EVALUATOR_REGISTRY", "build_evaluator"]


EVALUATOR_REGISTRY = NamedRegistry("EVALUATOR")
EVALUATOR_REGISTRY.__doc__ = """
Registry of evaluator factories, by dataset ``evaluator_type`` (a metadata field).
A factory is called as ``factory(cfg, dataset_name, output_folder)`` and returns a
``DatasetEvaluator`` or a list of them.
"""


def build_evaluator(cfg, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
    """The evaluator(s) for ``dataset_name``, chosen by its metadata's ``evaluator_type``.

    Args:
        cfg: the config (passed to the factory).
        dataset_name: a name registered in ``segcore.data.MetadataCatalog``.
        output_folder: where evaluators write files; default ``<OUTPUT_DIR>/inference``.

    Returns:
        one evaluator, or a :class:`DatasetEvaluators` when the factory returns several.

    Raises:
        NotImplementedError: the dataset has no ``evaluator_type``, or no factory is registered
            for it (or the factory returned none); the message names the dataset and the type.
    """
    from segcore.data import MetadataCatalog

    if output_folder is None:
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference")
    evaluator_type = getattr(MetadataCatalog.get(dataset_name), "evaluator_type", None)
    if evaluator_type is None:
        raise NotImplementedError(
            f"Dataset '{dataset_name}' has no 'evaluator_type' in its metadata; cannot choose an evaluator"
        )
    if evaluator_type not in EVALUATOR_REGISTRY:
        raise NotImplementedError(
            f"No evaluator for the dataset '{dataset_name}' with the type '{evaluator_type}' "
            f"(registered types: {EVALUATOR_REGISTRY.names()}). Import the model family that "
            "registers it, or pass evaluators explicitly."
        )
    result = EVALUATOR_REGISTRY.get(evaluator_type)(cfg, dataset_name, output_folder)
    evaluators = list(result) if isinstance(result, (list, tuple)) else [result]
    if not evaluators:
        raise NotImplementedError(
            f"No evaluator for the dataset '{dataset_name}' with the type '{evaluator_type}' "
            "under the current config"
        )
    if len(evaluators) == 1:
        return evaluators[0]
    return DatasetEvaluators(evaluators)
