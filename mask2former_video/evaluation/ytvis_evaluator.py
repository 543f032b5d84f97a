"""The video instance segmentation evaluator (the original ``YTVISEvaluator``,
``mask2former_video/data_video/ytvis_eval.py``), registered for datasets of ``evaluator_type ==
"ytvis"`` in :data:`segcore.evaluation.EVALUATOR_REGISTRY`.

Each video's output (the model's ``{"pred_scores", "pred_labels", "pred_masks"}``) becomes result
records in the YouTube-VIS results format (:func:`instances_to_ytvis_json`); at the end the
category ids are mapped back to the dataset's, ``results.json`` is written (the file the
YouTube-VIS / OVIS evaluation servers take, zipped) and, when the json has annotations, video AP is
computed as the YouTube-VIS API does (:mod:`.ytvis_eval`).
"""
from __future__ import annotations

import copy
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
import torch
from tabulate import tabulate

from segcore.data import MetadataCatalog
from segcore.evaluation import EVALUATOR_REGISTRY, DatasetEvaluator, gather_on_main_process
from segcore.utils.file_io import PathManager

from .ytvis_eval import STAT_NAMES, run_ytvis_eval

__all__ = ["YTVISEvaluator", "instances_to_ytvis_json", "results_to_dataset_ids"]

logger = logging.getLogger(__name__)

def instances_to_ytvis_json(inputs: List[dict], outputs: dict) -> List[dict]:
    """Result records of one video (the original ``instances_to_coco_json_video``).

    Args:
        inputs: the one video's input dict (a list of one), with ``"video_id"``.
        outputs: the model's video output: ``pred_scores`` (k floats), ``pred_labels`` (k contiguous
            ids), ``pred_masks`` (k bool (T, H, W)).

    Returns:
        k records ``{"video_id", "score", "category_id" (still contiguous), "segmentations": T
        compressed RLEs with str counts}``.

    Raises:
        ValueError: not exactly one input.
    """
    import pycocotools.mask as mask_util

    if len(inputs) != 1:
        raise ValueError(f"A video model evaluates one video at a time; got {len(inputs)} inputs")
    video_id = inputs[0]["video_id"]
    records = []
    for score, label, tube in zip(outputs["pred_scores"], outputs["pred_labels"], outputs["pred_masks"]):
        tube = torch.as_tensor(tube).cpu().numpy().astype(np.uint8)
        segms = [mask_util.encode(np.asfortranarray(frame[:, :, None]))[0] for frame in tube]
        for rle in segms:
            rle["counts"] = rle["counts"].decode("utf-8")
        records.append({"video_id": video_id, "score": float(score), "category_id": int(label),
                        "segmentations": segms})
    return records


def results_to_dataset_ids(results: List[dict], contiguous_to_dataset: Dict[int, int]) -> List[dict]:
    """The records with their contiguous ``category_id`` replaced by the dataset's (in place).

    Raises:
        KeyError: a class that is not one of the dataset's contiguous ids.
    """
    for r in results:
        if r["category_id"] not in contiguous_to_dataset:
            raise KeyError(f"A prediction has class {r['category_id']} (video {r['video_id']}), but the dataset's "
                           f"classes are 0..{len(contiguous_to_dataset) - 1}")
        r["category_id"] = contiguous_to_dataset[r["category_id"]]
    return results


class YTVISEvaluator(DatasetEvaluator):
    """Video AP of a YouTube-VIS-format dataset (and its ``results.json``).

    Args:
        dataset_name: a registered dataset with ``json_file`` and ``thing_dataset_id_to_contiguous_id``
            in its metadata.
        distributed: gather the predictions of every process and evaluate on the main one.
        output_dir: where ``instances_predictions.pth`` (the records, contiguous ids) and
            ``results.json`` (dataset ids: the server's format) are written; None writes nothing.

    ``evaluate()`` returns ``{"segm": {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
    "AR100", "ARs", "ARm", "ARl", "AP-<class>" ...}}`` in percent (NaN where undefined, as the
    original), or ``{}`` when the json has no annotations (a test split: submit ``results.json``)
    or no prediction was made; None on the other processes.

    Raises:
        FileNotFoundError: the dataset's json is missing.
    """

    def __init__(self, dataset_name: str, distributed: bool = True, output_dir: Optional[str] = None):
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        self._metadata = MetadataCatalog.get(dataset_name)
        json_file = self._metadata.get("json_file", None)
        if json_file is None:
            raise FileNotFoundError(f"Dataset '{dataset_name}' has no 'json_file' in its metadata")
        local = PathManager.get_local_path(json_file)
        if not os.path.isfile(local):
            raise FileNotFoundError(f"YouTube-VIS json of the dataset '{dataset_name}' not found: {json_file}")
        with open(local, "r") as f:
            self._gt = json.load(f)
        self._do_evaluation = bool(self._gt.get("annotations"))
        self.reset()

    def reset(self) -> None:
        self._predictions: List[dict] = []

    def process(self, inputs: List[dict], outputs: dict) -> None:
        """Convert the video's output to result records (:func:`instances_to_ytvis_json`)."""
        self._predictions.extend(instances_to_ytvis_json(inputs, outputs))

    def evaluate(self) -> Optional[OrderedDict]:
        predictions = gather_on_main_process(self._predictions, self._distributed)
        if predictions is None:
            return None
        if len(predictions) == 0:
            logger.warning("YTVISEvaluator on '%s' did not receive valid predictions.", self._dataset_name)
            return OrderedDict()
        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            with PathManager.open(os.path.join(self._output_dir, "instances_predictions.pth"), "wb") as f:
                torch.save(predictions, f)
        mapping = self._metadata.get("thing_dataset_id_to_contiguous_id", None)
        results = copy.deepcopy(predictions)
        if mapping:
            results_to_dataset_ids(results, {v: k for k, v in mapping.items()})
        if self._output_dir:
            path = os.path.join(self._output_dir, "results.json")
            logger.info("Saving results to %s", path)
            with PathManager.open(path, "w") as f:
                f.write(json.dumps(results))
        if not self._do_evaluation:
            logger.info("'%s' has no annotations: submit results.json to the evaluation server.", self._dataset_name)
            return OrderedDict()
        return OrderedDict(segm=self._derive_results(results))

    def _derive_results(self, results: List[dict]) -> Dict[str, float]:
        """The 12 numbers and the per-category AP (percent, NaN where undefined), logged as tables."""
        ev = run_ytvis_eval(self._gt, results)
        out = {name: float(v) * 100 if v >= 0 else float("nan") for name, v in zip(STAT_NAMES, ev.stats)}
        logger.info("Evaluation results for segm (video) on '%s':\n%s", self._dataset_name,
                    tabulate([(k, out[k]) for k in STAT_NAMES], headers=["metric", "value"], tablefmt="pipe",
                             floatfmt=".3f"))
        precision = np.asarray(ev.eval["precision"])  # (T IoUs, R recalls, K categories, A areas, M maxDets)
        names = {c["id"]: c["name"] for c in self._gt.get("categories", [])}
        per_category = []
        for k, cat_id in enumerate(ev.params.catIds):
            p = precision[:, :, k, 0, -1]
            p = p[p > -1]
            per_category.append((names.get(cat_id, str(cat_id)), float(np.mean(p)) * 100 if p.size else float("nan")))
        out.update({f"AP-{name}": ap for name, ap in per_category})
        logger.info("Per-category segm (video) AP:\n%s",
                    tabulate(per_category, headers=["category", "AP"], tablefmt="pipe", floatfmt=".3f"))
        return out


@EVALUATOR_REGISTRY.register("ytvis")
def ytvis_evaluator(cfg, dataset_name: str, output_folder: Optional[str]) -> YTVISEvaluator:
    """The evaluator of ``evaluator_type == "ytvis"`` datasets (YouTube-VIS 2019 / 2021, OVIS, the
    quickstart videos): video AP, ``results.json`` in ``output_folder``."""
    return YTVISEvaluator(dataset_name, distributed=True, output_dir=output_folder)
