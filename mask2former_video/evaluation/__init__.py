"""Video AP: the YouTube-VIS API's computation (:mod:`.ytvis_eval`) and the evaluator of ``"ytvis"``
datasets (:class:`YTVISEvaluator`, registered in :data:`segcore.evaluation.EVALUATOR_REGISTRY`)."""
from .ytvis_eval import (AREA_RANGES, STAT_NAMES, YTVISeval, evaluate_ytvis, evaluate_ytvis_files, mean_area,
                         run_ytvis_eval, tube_iou)
from .ytvis_evaluator import YTVISEvaluator, instances_to_ytvis_json, results_to_dataset_ids

__all__ = ["AREA_RANGES", "STAT_NAMES", "YTVISEvaluator", "YTVISeval", "evaluate_ytvis", "evaluate_ytvis_files",
           "instances_to_ytvis_json", "mean_area", "results_to_dataset_ids", "run_ytvis_eval", "tube_iou"]
