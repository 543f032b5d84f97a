"""Evaluation: the evaluator interface, the inference loop, SemSegEvaluator and the evaluator registry."""
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .registry import EVALUATOR_REGISTRY, build_evaluator
from .sem_seg_evaluation import SemSegEvaluator
from .testing import flatten_results_dict, print_csv_format, verify_results

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "EVALUATOR_REGISTRY", "SemSegEvaluator", "build_evaluator",
           "flatten_results_dict", "inference_context", "inference_on_dataset", "print_csv_format",
           "verify_results"]
