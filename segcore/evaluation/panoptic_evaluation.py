"""Panoptic quality of model outputs on a COCO-panoptic-format dataset, as Detectron2's
``evaluation/panoptic_evaluation.py`` (with :func:`~.panoptic_quality.pq_compute` in place of
panopticapi)."""
from __future__ import annotations

import io
import itertools
import json
import logging
import os
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from tabulate import tabulate

from segcore.data.panoptic_utils import id2rgb
from segcore.utils import comm
from segcore.utils.file_io import PathManager

from .evaluator import DatasetEvaluator
from .panoptic_quality import pq_compute

__all__ = ["COCOPanopticEvaluator"]

logger = logging.getLogger(__name__)

#: Largest segment id a COCO panoptic PNG can hold (24-bit RGB).
_MAX_SEGMENT_ID = 256**3 - 1


class COCOPanopticEvaluator(DatasetEvaluator):
    """Evaluate panoptic quality (PQ, SQ, RQ) as Detectron2's ``COCOPanopticEvaluator``.

    Each model output ``"panoptic_seg"`` is a pair ``(panoptic_img, segments_info)``:

    * ``panoptic_img``: int tensor (H, W) of segment ids at the input's original size;
    * ``segments_info``: list of dicts ``{"id", "category_id", "isthing", ...}`` with
      ``category_id`` a contiguous id, turned back into a dataset id with the metadata's
      ``thing_dataset_id_to_contiguous_id`` (``isthing`` True) or
      ``stuff_dataset_id_to_contiguous_id`` (False); without ``isthing`` the id is taken as a
      dataset id already. Pixels of id 0 (or ids not listed) are VOID.
    * or ``segments_info is None``: ``panoptic_img`` holds ``category * label_divisor +
      instance`` (contiguous category, metadata ``label_divisor``), -1 for VOID; a category is a
      thing when it is among the thing map's contiguous ids.

    Predictions become COCO panoptic PNGs in a temporary folder; after gathering over processes
    (``segcore.utils.comm.gather``) the main process compares them with the metadata's
    ``panoptic_json`` / ``panoptic_root``. It contains a synchronization: call it on all ranks.

    Results: ``{"panoptic_seg": {"PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st",
    "RQ_st"}}`` in percent (NaN for a group without any category to average).
    Written when ``output_dir`` is given: ``predictions.json`` (the ground-truth json with the
    predicted ``annotations``).
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *, num_workers: int = 0):
        """
        Args:
            dataset_name: a dataset registered in ``segcore.data`` whose metadata has
                ``panoptic_json``, ``panoptic_root``, ``thing_dataset_id_to_contiguous_id`` and
                ``stuff_dataset_id_to_contiguous_id`` (and ``label_divisor`` for outputs
                without ``segments_info``).
            output_dir: folder for ``predictions.json`` (``None``: not kept).
            num_workers: processes used to compute PQ over the images (0: in this process).

        Raises:
            AttributeError: the metadata lacks one of the two id maps (the message names the dataset).
        """
        from segcore.data import MetadataCatalog

        self._dataset_name = dataset_name
        self._metadata = MetadataCatalog.get(dataset_name)
        maps = {}
        for key in ("thing_dataset_id_to_contiguous_id", "stuff_dataset_id_to_contiguous_id"):
            mapping = getattr(self._metadata, key, None)
            if mapping is None:
                raise AttributeError(f"COCOPanopticEvaluator: dataset '{dataset_name}' has no '{key}' in its metadata")
            maps[key] = {int(v): int(k) for k, v in mapping.items()}
        self._thing_contiguous_id_to_dataset_id = maps["thing_dataset_id_to_contiguous_id"]
        self._stuff_contiguous_id_to_dataset_id = maps["stuff_dataset_id_to_contiguous_id"]
        self._output_dir = output_dir
        self._num_workers = num_workers
        if self._output_dir is not None:
            PathManager.mkdirs(self._output_dir)
        self.reset()

    def reset(self) -> None:
        self._predictions: List[dict] = []

    def _convert_category_id(self, segment_info: dict, file_name: str) -> dict:
        segment_info = dict(segment_info)
        isthing = segment_info.pop("isthing", None)
        if isthing is None:
            return segment_info
        mapping = self._thing_contiguous_id_to_dataset_id if isthing else self._stuff_contiguous_id_to_dataset_id
        category_id = int(segment_info["category_id"])
        if category_id not in mapping:
            kind = "thing" if isthing else "stuff"
            raise KeyError(
                f"Prediction for {file_name}: segment {segment_info.get('id')} has {kind} category_id {category_id}, "
                f"not a contiguous {kind} id of dataset '{self._dataset_name}'"
            )
        segment_info["category_id"] = mapping[category_id]
        return segment_info

    def _segments_from_label_divisor(self, panoptic_img: np.ndarray, file_name: str) -> List[dict]:
        label_divisor = getattr(self._metadata, "label_divisor", None)
        if label_divisor is None:
            raise AttributeError(
                f"Prediction for {file_name} has segments_info None, but dataset '{self._dataset_name}' has no "
                "'label_divisor' in its metadata to decode the panoptic ids"
            )
        thing_ids = set(self._thing_contiguous_id_to_dataset_id)
        segments_info = []
        for label in np.unique(panoptic_img).tolist():
            if label == -1:
                continue
            category = int(label) // int(label_divisor)
            segments_info.append({"id": int(label) + 1, "category_id": category, "isthing": category in thing_ids})
        return segments_info

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Encode each output's ``"panoptic_seg"`` as a PNG in memory, with its segments.

        Args:
            inputs: dataset dicts with ``"file_name"`` and ``"image_id"``.
            outputs: dicts with ``"panoptic_seg"`` (see the class docstring).

        Raises:
            KeyError: a segment's category is not a contiguous id of the dataset.
            ValueError: a segment id does not fit in a 24-bit PNG (negative or >= 256^3).
        """
        for input, output in zip(inputs, outputs):
            panoptic_img, segments_info = output["panoptic_seg"]
            panoptic_img = panoptic_img.cpu().numpy().astype(np.int64)
            file_name = os.path.basename(input["file_name"])
            if segments_info is None:
                segments_info = self._segments_from_label_divisor(panoptic_img, file_name)
                panoptic_img = panoptic_img + 1  # VOID -1 -> 0, as COCO panoptic PNGs
            if panoptic_img.size and (panoptic_img.min() < 0 or panoptic_img.max() > _MAX_SEGMENT_ID):
                raise ValueError(
                    f"Prediction for {file_name}: segment ids must be in [0, {_MAX_SEGMENT_ID}] to be written as a "
                    f"COCO panoptic PNG; got [{panoptic_img.min()}, {panoptic_img.max()}]"
                )
            with io.BytesIO() as out:
                Image.fromarray(id2rgb(panoptic_img)).save(out, format="PNG")
                png_string = out.getvalue()
            self._predictions.append(
                {
                    "image_id": input["image_id"],
                    "file_name": os.path.splitext(file_name)[0] + ".png",
                    "png_string": png_string,
                    "segments_info": [self._convert_category_id(s, file_name) for s in segments_info],
                }
            )

    def evaluate(self) -> Optional[OrderedDict]:
        """Compute PQ on the main process (``None`` on the others).

        Raises:
            FileNotFoundError / KeyError: from :func:`~.panoptic_quality.pq_compute` (missing
                ground truth, an image without prediction, ...).
        """
        comm.synchronize()
        predictions = list(itertools.chain(*comm.gather(self._predictions)))
        if not comm.is_main_process():
            return None

        gt_json = PathManager.get_local_path(self._metadata.panoptic_json)
        gt_folder = PathManager.get_local_path(self._metadata.panoptic_root)
        with tempfile.TemporaryDirectory(prefix="panoptic_eval") as pred_dir:
            logger.info("Writing all panoptic predictions to %s ...", pred_dir)
            annotations = []
            for p in predictions:
                with open(os.path.join(pred_dir, p["file_name"]), "wb") as f:
                    f.write(p["png_string"])
                annotations.append({k: v for k, v in p.items() if k != "png_string"})
            with open(gt_json) as f:
                json_data = json.load(f)
            json_data["annotations"] = annotations
            output_dir = self._output_dir or pred_dir
            predictions_json = os.path.join(output_dir, "predictions.json")
            with PathManager.open(predictions_json, "w") as f:
                f.write(json.dumps(json_data))
            pq_res = pq_compute(
                gt_json,
                PathManager.get_local_path(predictions_json),
                gt_folder=gt_folder,
                pred_folder=pred_dir,
                num_workers=self._num_workers,
            )

        res: Dict[str, float] = {}
        for suffix, group in (("", "All"), ("_th", "Things"), ("_st", "Stuff")):
            for metric in ("PQ", "SQ", "RQ"):
                res[metric + suffix] = 100 * pq_res[group][metric.lower()]
        _print_panoptic_results(pq_res)
        return OrderedDict({"panoptic_seg": res})


def _print_panoptic_results(pq_res: dict) -> None:
    headers = ["", "PQ", "SQ", "RQ", "#categories"]
    data = [
        [name] + [pq_res[name][k] * 100 for k in ("pq", "sq", "rq")] + [pq_res[name]["n"]]
        for name in ("All", "Things", "Stuff")
    ]
    table = tabulate(data, headers=headers, tablefmt="pipe", floatfmt=".3f", stralign="center", numalign="center")
    logger.info("Panoptic Evaluation Results:\n" + table)


# ---------------------------------------------------------------------------------------------
# Registry factories of the panoptic dataset types.
#
# Which evaluators run follows the outputs the configured model declares
# (``segcore.modeling.model_output_tasks``: MaskFormer-family models read their test switches, as
# Mask2Former's ``train_net.py``); a model that declares nothing counts as panoptic only. Each
# type names its semantic and instance evaluator classes; ADE20K panoptic is always evaluated for
# semantics too (as MaskFormer and Mask2Former).
# ---------------------------------------------------------------------------------------------
#: the outputs assumed of a model whose meta-architecture does not declare them
DEFAULT_PANOPTIC_MODEL_TASKS = frozenset({"panoptic_seg"})


def _sem_seg(dataset_name: str, output_folder: Optional[str]):
    from .sem_seg_evaluation import SemSegEvaluator

    return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder)


def _coco_instances(dataset_name: str, output_folder: Optional[str]):
    from .coco_evaluation import COCOEvaluator

    return COCOEvaluator(dataset_name, output_dir=output_folder)


def _cityscapes_sem_seg(dataset_name: str, output_folder: Optional[str]):
    from .cityscapes_evaluation import CityscapesSemSegEvaluator

    return CityscapesSemSegEvaluator(dataset_name)


def _cityscapes_instances(dataset_name: str, output_folder: Optional[str]):
    from .cityscapes_evaluation import CityscapesInstanceEvaluator

    return CityscapesInstanceEvaluator(dataset_name)


#: evaluator_type -> (semantic evaluator, instance evaluator, semantic always evaluated)
PANOPTIC_EVALUATOR_TYPES = {
    "coco_panoptic_seg": (_sem_seg, _coco_instances, False),
    "ade20k_panoptic_seg": (_sem_seg, _coco_instances, True),
    "mapillary_vistas_panoptic_seg": (_sem_seg, _coco_instances, False),
    "cityscapes_panoptic_seg": (_cityscapes_sem_seg, _cityscapes_instances, False),
}


def panoptic_dataset_evaluators(cfg, dataset_name: str, output_folder: Optional[str]) -> List[DatasetEvaluator]:
    """Evaluators of a panoptic dataset, chosen from its ``evaluator_type`` and the config's test switches.

    * ``COCOPanopticEvaluator`` when the model returns ``panoptic_seg``;
    * the type's semantic evaluator (``SemSegEvaluator``; ``CityscapesSemSegEvaluator`` for
      Cityscapes) when it returns ``sem_seg``, and always for ``ade20k_panoptic_seg``;
    * the type's instance evaluator (``COCOEvaluator``; ``CityscapesInstanceEvaluator`` for
      Cityscapes) when it returns ``instances``.

    The model's outputs are those its meta-architecture declares
    (:func:`segcore.modeling.model_output_tasks`), or :data:`DEFAULT_PANOPTIC_MODEL_TASKS`.

    Returns:
        the list (possibly empty: ``build_evaluator`` then raises a clear error).

    Raises:
        KeyError: the dataset's ``evaluator_type`` is not one of :data:`PANOPTIC_EVALUATOR_TYPES`.
    """
    from segcore.data import MetadataCatalog
    from segcore.modeling import model_output_tasks

    evaluator_type = MetadataCatalog.get(dataset_name).evaluator_type
    if evaluator_type not in PANOPTIC_EVALUATOR_TYPES:
        raise KeyError(f"Dataset '{dataset_name}' has evaluator_type '{evaluator_type}', not a panoptic type")
    semantic, instance, semantic_always = PANOPTIC_EVALUATOR_TYPES[evaluator_type]
    tasks = model_output_tasks(cfg)
    if tasks is None:
        tasks = DEFAULT_PANOPTIC_MODEL_TASKS
    evaluators: List[DatasetEvaluator] = []
    if semantic_always or "sem_seg" in tasks:
        evaluators.append(semantic(dataset_name, output_folder))
    if "panoptic_seg" in tasks:
        evaluators.append(COCOPanopticEvaluator(dataset_name, output_folder))
    if "instances" in tasks:
        evaluators.append(instance(dataset_name, output_folder))
    return evaluators


def _register_panoptic_types() -> None:
    from .registry import EVALUATOR_REGISTRY

    for evaluator_type in PANOPTIC_EVALUATOR_TYPES:
        if evaluator_type not in EVALUATOR_REGISTRY:
            EVALUATOR_REGISTRY.register(evaluator_type)(panoptic_dataset_evaluators)


_register_panoptic_types()
