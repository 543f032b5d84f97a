"""COCO instance segmentation (and box) AP, as Detectron2's ``evaluation/coco_evaluation.py``,
with pycocotools (or faster-coco-eval when asked)."""
from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tabulate import tabulate

from segcore.utils.file_io import PathManager

from .evaluator import DatasetEvaluator, gather_on_main_process

__all__ = ["COCOEvaluator", "convert_to_coco_dict", "convert_to_coco_json", "instances_to_coco_json"]

logger = logging.getLogger(__name__)

#: The summary metrics, as ``COCOeval.summarize``: (name, IoU threshold index or None, area index).
_SUMMARY_METRICS = (("AP", None, 0), ("AP50", 0, 0), ("AP75", 5, 0), ("APs", None, 1), ("APm", None, 2), ("APl", None, 3))


def instances_to_coco_json(instances, img_id: int) -> List[dict]:
    """COCO result records of one image's predictions (Detectron2's ``instances_to_coco_json``).

    Args:
        instances: ``Instances`` with ``scores`` (float (N,)), ``pred_classes`` (int64 (N,),
            contiguous ids) and optionally ``pred_masks`` (bool (N, H, W)) and ``pred_boxes``
            (``Boxes``, XYXY in pixels).
        img_id: the image's id in the COCO json.

    Returns:
        list of ``{"image_id", "category_id" (still contiguous), "score"}`` plus ``"bbox"``
        ([x, y, w, h], pixels) and ``"segmentation"`` (COCO RLE with str counts) when present.
    """
    import pycocotools.mask as mask_util

    num_instance = len(instances)
    if num_instance == 0:
        return []
    scores = instances.scores.tolist()
    classes = instances.pred_classes.tolist()
    boxes = None
    if instances.has("pred_boxes"):
        xyxy = instances.pred_boxes.tensor.detach().cpu().numpy().astype(np.float64)
        boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).tolist()
    rles = None
    if instances.has("pred_masks"):
        masks = instances.pred_masks.detach().cpu().numpy().astype(np.uint8)
        rles = [mask_util.encode(np.asfortranarray(mask[:, :, None]))[0] for mask in masks]
        for rle in rles:
            rle["counts"] = rle["counts"].decode("utf-8")
    results = []
    for k in range(num_instance):
        result = {"image_id": img_id, "category_id": classes[k], "score": scores[k]}
        if boxes is not None:
            result["bbox"] = boxes[k]
        if rles is not None:
            result["segmentation"] = rles[k]
        results.append(result)
    return results


def convert_to_coco_dict(dataset_name: str) -> dict:
    """A registered dataset's dicts as a COCO instances dict (Detectron2's ``convert_to_coco_dict``).

    Annotations need ``bbox`` / ``bbox_mode`` and ``category_id`` (contiguous); ``segmentation``
    (polygons or RLE) and ``iscrowd`` are kept when present. Areas are the mask areas (box
    areas without masks).

    Raises:
        ValueError: an annotation lacks ``bbox`` or has a category without a dataset id.
    """
    import pycocotools.mask as mask_util

    from segcore.data import DatasetCatalog, MetadataCatalog
    from segcore.structures.boxes import BoxMode

    meta = MetadataCatalog.get(dataset_name)
    mapping = getattr(meta, "thing_dataset_id_to_contiguous_id", None)
    reverse = {v: k for k, v in mapping.items()} if mapping else None
    names = list(getattr(meta, "thing_classes", []))
    if reverse is not None:
        categories = [{"id": k, "name": names[v] if v < len(names) else str(k)} for k, v in mapping.items()]
    else:
        categories = [{"id": i, "name": name} for i, name in enumerate(names)]

    images, annotations = [], []
    for image_index, record in enumerate(DatasetCatalog.get(dataset_name)):
        image_id = record.get("image_id", image_index)
        images.append({"id": image_id, "width": int(record["width"]), "height": int(record["height"]),
                       "file_name": str(record["file_name"])})
        for ann in record.get("annotations", []):
            if "bbox" not in ann:
                raise ValueError(f"Dataset '{dataset_name}', image {record['file_name']}: an annotation has no 'bbox'")
            bbox = BoxMode.convert(list(ann["bbox"]), ann.get("bbox_mode", BoxMode.XYWH_ABS), BoxMode.XYWH_ABS)
            coco_ann = {"id": len(annotations) + 1, "image_id": image_id, "bbox": [float(x) for x in bbox],
                        "iscrowd": int(ann.get("iscrowd", 0))}
            segmentation = ann.get("segmentation")
            if isinstance(segmentation, list):
                rle = mask_util.merge(mask_util.frPyObjects(segmentation, record["height"], record["width"]))
                coco_ann["segmentation"], coco_ann["area"] = segmentation, float(mask_util.area(rle))
            elif isinstance(segmentation, dict):
                rle = dict(segmentation)
                if isinstance(rle["counts"], list):
                    rle = mask_util.frPyObjects(rle, *rle["size"])
                coco_ann["area"] = float(mask_util.area(rle))
                if isinstance(rle["counts"], bytes):
                    rle["counts"] = rle["counts"].decode("ascii")
                coco_ann["segmentation"] = rle
            else:
                coco_ann["area"] = float(bbox[2] * bbox[3])
            category_id = int(ann["category_id"])
            if reverse is not None:
                if category_id not in reverse:
                    raise ValueError(
                        f"Dataset '{dataset_name}': category_id {category_id} is not in thing_dataset_id_to_contiguous_id"
                    )
                category_id = reverse[category_id]
            coco_ann["category_id"] = category_id
            annotations.append(coco_ann)
    return {"info": {"description": f"Converted from the dataset '{dataset_name}'"}, "images": images,
            "annotations": annotations, "categories": categories}


def convert_to_coco_json(dataset_name: str, output_file: str, allow_cached: bool = True) -> None:
    """Write :func:`convert_to_coco_dict` of ``dataset_name`` to ``output_file`` (reused when it
    exists and ``allow_cached``)."""
    if allow_cached and PathManager.exists(output_file):
        logger.info("Using the cached COCO json %s of '%s'", output_file, dataset_name)
        return
    PathManager.mkdirs(os.path.dirname(output_file) or ".")
    coco_dict = convert_to_coco_dict(dataset_name)
    with PathManager.open(output_file, "w") as f:
        json.dump(coco_dict, f)


class COCOEvaluator(DatasetEvaluator):
    """COCO AP of instance segmentation (``"segm"``) and boxes (``"bbox"``), as Detectron2's
    ``COCOEvaluator``.

    Each output's ``"instances"`` (see :func:`instances_to_coco_json`) is turned into COCO
    results with RLE masks; categories go back to dataset ids with the metadata's
    ``thing_dataset_id_to_contiguous_id`` (which need not be contiguous, so ADE20K or
    Mapillary thing subsets work too). Results are gathered over processes and compared with the
    metadata's ``json_file`` (a COCO instances json); when the dataset has none, its dicts are
    converted (:func:`convert_to_coco_json`) into ``output_dir``.

    For the ``"segm"`` task the boxes are dropped from the results, so COCO derives them from
    the masks (as Detectron2).

    Results: ``{task: {"AP", "AP50", "AP75", "APs", "APm", "APl", "AP-<class>", ...}}``, in
    percent (NaN where COCO gives -1, i.e. no ground truth). Written when ``output_dir`` is
    given: ``instances_predictions.pth`` and ``coco_instances_results.json``.

    Backends: pycocotools ``COCOeval`` by default; ``use_fast_impl=True`` uses faster-coco-eval's
    ``COCOeval_faster`` (same numbers, a C++ evaluation).
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: Sequence[str] = ("segm",),
        distributed: bool = True,
        output_dir: Optional[str] = None,
        *,
        use_fast_impl: bool = False,
        max_dets_per_image: int = 100,
        allow_cached_coco: bool = True,
    ):
        """
        Args:
            dataset_name: a registered dataset with ``thing_classes`` and
                ``thing_dataset_id_to_contiguous_id`` (optional) and ``json_file`` (optional).
            tasks: subset of ``("segm", "bbox")``.
            distributed: gather results from all processes (only the main one evaluates).
            output_dir: folder for the predictions and a converted json (``None``: none kept).
            use_fast_impl: evaluate with faster-coco-eval.
            max_dets_per_image: detections per image kept by COCO (its ``maxDets`` become
                ``[1, 10, max_dets_per_image]``; the AP uses the last).
            allow_cached_coco: reuse a converted json found in ``output_dir``.

        Raises:
            ValueError: an unknown task.
            ImportError: ``use_fast_impl`` without faster-coco-eval installed.
            FileNotFoundError: ``json_file`` is set but missing.
            RuntimeError: no ``json_file`` and no ``output_dir`` to convert the dataset into.
        """
        from segcore.data import MetadataCatalog

        unknown = set(tasks) - {"segm", "bbox"}
        if unknown:
            raise ValueError(f"COCOEvaluator: unknown tasks {sorted(unknown)}; supported: 'segm', 'bbox'")
        self._tasks = tuple(tasks)
        self._distributed = distributed
        self._output_dir = output_dir
        self._use_fast_impl = use_fast_impl
        self._max_dets_per_image = int(max_dets_per_image)
        self._dataset_name = dataset_name
        self._metadata = MetadataCatalog.get(dataset_name)
        self._cpu_device = torch.device("cpu")
        if use_fast_impl:
            try:
                import faster_coco_eval  # noqa: F401
            except ImportError as e:
                raise ImportError("COCOEvaluator(use_fast_impl=True) needs faster-coco-eval: pip install faster-coco-eval") from e

        json_file = getattr(self._metadata, "json_file", None)
        if json_file is None:
            if output_dir is None:
                raise RuntimeError(
                    f"Dataset '{dataset_name}' has no 'json_file' in its metadata; give output_dir so that its dicts "
                    "can be converted to a COCO json there"
                )
            json_file = os.path.join(output_dir, f"{dataset_name}_coco_format.json")
            logger.info("Converting the dataset '%s' to a COCO json: %s", dataset_name, json_file)
            convert_to_coco_json(dataset_name, json_file, allow_cached=allow_cached_coco)
            self._metadata.json_file = json_file
        local = PathManager.get_local_path(json_file)
        if not os.path.isfile(local):
            raise FileNotFoundError(f"COCO json of the dataset '{dataset_name}' not found: {json_file}")
        self._coco_api = self._load_coco(local)
        self.reset()

    def _coco_class(self):
        if self._use_fast_impl:
            from faster_coco_eval import COCO
        else:
            from pycocotools.coco import COCO
        return COCO

    def _load_coco(self, path: str):
        with contextlib.redirect_stdout(io.StringIO()):
            return self._coco_class()(path)

    def reset(self) -> None:
        self._predictions: List[dict] = []

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Convert each output's ``"instances"`` to COCO results (outputs without them are skipped).

        Args:
            inputs: dataset dicts with ``"image_id"``.
            outputs: dicts with ``"instances"``.
        """
        for input, output in zip(inputs, outputs):
            prediction = {"image_id": input["image_id"]}
            if "instances" in output:
                instances = output["instances"].to(self._cpu_device)
                prediction["instances"] = instances_to_coco_json(instances, input["image_id"])
            if len(prediction) > 1:
                self._predictions.append(prediction)

    def evaluate(self, img_ids: Optional[Sequence[int]] = None) -> Optional[OrderedDict]:
        """Compute the AP of each task on the main process (``None`` on the others).

        Args:
            img_ids: evaluate only these image ids (default: all ground-truth images).

        Raises:
            KeyError: a predicted category is not a contiguous id of the dataset.
        """
        predictions = gather_on_main_process(self._predictions, self._distributed)
        if predictions is None:
            return None
        if len(predictions) == 0:
            logger.warning("COCOEvaluator on '%s' did not receive valid predictions.", self._dataset_name)
            return OrderedDict()
        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            with PathManager.open(os.path.join(self._output_dir, "instances_predictions.pth"), "wb") as f:
                torch.save(predictions, f)

        coco_results = list(itertools.chain(*[p["instances"] for p in predictions if "instances" in p]))
        mapping = getattr(self._metadata, "thing_dataset_id_to_contiguous_id", None)
        if mapping:
            reverse = {v: k for k, v in mapping.items()}
            for result in coco_results:
                if result["category_id"] not in reverse:
                    raise KeyError(
                        f"Predicted category {result['category_id']} (image {result['image_id']}) is not a contiguous "
                        f"thing id of dataset '{self._dataset_name}'"
                    )
                result["category_id"] = reverse[result["category_id"]]
        if self._output_dir:
            with PathManager.open(os.path.join(self._output_dir, "coco_instances_results.json"), "w") as f:
                f.write(json.dumps(coco_results))

        results: OrderedDict = OrderedDict()
        for task in sorted(self._tasks):
            coco_eval = self._evaluate_on_coco(coco_results, task, img_ids) if coco_results else None
            results[task] = self._derive_coco_results(coco_eval, task)
        return results

    def _evaluate_on_coco(self, coco_results: List[dict], iou_type: str, img_ids: Optional[Sequence[int]]):
        results = copy.deepcopy(coco_results)
        if iou_type == "segm":
            for r in results:
                r.pop("bbox", None)  # COCO derives the box from the mask
        missing = [r for r in results if ("segmentation" if iou_type == "segm" else "bbox") not in r]
        if iou_type == "bbox" and missing:
            import pycocotools.mask as mask_util

            for r in missing:
                if "segmentation" not in r:
                    raise KeyError(f"Image {r['image_id']}: a prediction has neither pred_boxes nor pred_masks")
                r["bbox"] = mask_util.toBbox(r["segmentation"]).tolist()
        elif missing:
            raise KeyError(f"Image {missing[0]['image_id']}: the 'segm' task needs pred_masks in the predictions")
        if iou_type == "segm":
            for r in results:
                r["segmentation"] = dict(r["segmentation"])

        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = self._coco_api.loadRes(results)
            if self._use_fast_impl:
                from faster_coco_eval import COCOeval_faster as COCOeval
            else:
                from pycocotools.cocoeval import COCOeval
            coco_eval = COCOeval(self._coco_api, coco_dt, iou_type)
            coco_eval.params.maxDets = [1, 10, self._max_dets_per_image]
            if img_ids is not None:
                coco_eval.params.imgIds = list(img_ids)
            coco_eval.evaluate()
            coco_eval.accumulate()
        return coco_eval

    def _derive_coco_results(self, coco_eval, iou_type: str) -> Dict[str, float]:
        """Summary APs and per-category AP (percent) from ``coco_eval.eval["precision"]``
        ((T IoUs, R recalls, K categories, A areas, M maxDets), -1 where undefined)."""
        names = [m[0] for m in _SUMMARY_METRICS]
        if coco_eval is None:
            logger.warning("No predictions from the model on '%s'.", self._dataset_name)
            return {name: float("nan") for name in names}
        precision = np.asarray(coco_eval.eval["precision"])

        def mean_valid(p: np.ndarray) -> float:
            p = p[p > -1]
            return float(np.mean(p)) * 100 if p.size else float("nan")

        results = {}
        for name, iou_index, area_index in _SUMMARY_METRICS:
            p = precision[:, :, :, area_index, -1]
            if iou_index is not None:
                p = p[iou_index]
            results[name] = mean_valid(p)
        per_category = []
        for k, cat_id in enumerate(coco_eval.params.catIds):
            name = self._coco_api.cats[cat_id]["name"]
            ap = mean_valid(precision[:, :, k, 0, -1])
            results[f"AP-{name}"] = ap
            per_category.append((name, ap))
        table = tabulate([(m, results[m]) for m in names], headers=["metric", "value"], tablefmt="pipe", floatfmt=".3f")
        logger.info("Evaluation results for %s on '%s':\n%s", iou_type, self._dataset_name, table)
        table = tabulate(per_category, headers=["category", "AP"], tablefmt="pipe", floatfmt=".3f")
        logger.info("Per-category %s AP:\n%s", iou_type, table)
        return results


def _register_coco_type() -> None:
    from .registry import EVALUATOR_REGISTRY

    def coco_evaluator(cfg, dataset_name: str, output_folder: Optional[str]) -> COCOEvaluator:
        """The evaluator of ``evaluator_type == "coco"`` datasets (COCO, ADE20K instances): segm AP."""
        return COCOEvaluator(dataset_name, output_dir=output_folder)

    if "coco" not in EVALUATOR_REGISTRY:
        EVALUATOR_REGISTRY.register("coco")(coco_evaluator)


_register_coco_type()
