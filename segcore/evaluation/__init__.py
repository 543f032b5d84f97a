"""Evaluation: the evaluator interface, the inference loop, the semantic, panoptic, COCO instance
and Cityscapes evaluators, and the evaluator registry."""
from .cityscapes_evaluation import CityscapesEvaluator, CityscapesInstanceEvaluator, CityscapesSemSegEvaluator
from .coco_evaluation import COCOEvaluator, convert_to_coco_dict, convert_to_coco_json, instances_to_coco_json
from .evaluator import (DatasetEvaluator, DatasetEvaluators, gather_on_main_process, inference_context,
                        inference_on_dataset)
from .panoptic_evaluation import COCOPanopticEvaluator, panoptic_dataset_evaluators
from .panoptic_quality import pq_compute
from .registry import EVALUATOR_REGISTRY, build_evaluator
from .sem_seg_evaluation import SemSegEvaluator
from .testing import flatten_results_dict, print_csv_format, verify_results

__all__ = ["COCOEvaluator", "COCOPanopticEvaluator", "CityscapesEvaluator", "CityscapesInstanceEvaluator",
           "CityscapesSemSegEvaluator", "DatasetEvaluator", "DatasetEvaluators", "EVALUATOR_REGISTRY",
           "SemSegEvaluator", "build_evaluator", "convert_to_coco_dict", "convert_to_coco_json",
           "flatten_results_dict", "gather_on_main_process", "inference_context", "inference_on_dataset",
           "instances_to_coco_json",
           "panoptic_dataset_evaluators", "pq_compute", "print_csv_format", "verify_results"]
