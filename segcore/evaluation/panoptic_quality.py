"""Panoptic quality (PQ, SQ, RQ) on COCO-panoptic-format files, as panopticapi's ``pq_compute``.

Definition (Kirillov et al., "Panoptic Segmentation", CVPR 2019, Sec. 4, and panopticapi
``evaluation.py``), per image:

* Segment ids come from RGB PNGs (``id = R + 256 G + 256^2 B``); id 0 is VOID. Only segments
  listed in the image's ``segments_info`` count; ground-truth segments with ``iscrowd == 1``
  are ignored.
* A predicted segment matches a ground-truth segment of the same category when their IoU is
  above 0.5, where the predicted pixels on VOID leave the union:
  ``union = pred_area + gt_area - intersection - |pred & VOID|``. Matches are unique because
  IoU > 0.5 (Sec. 4.1). Each match is a true positive (TP) adding its IoU.
* Unmatched non-crowd ground-truth segments are false negatives (FN).
* An unmatched predicted segment is a false positive (FP) unless more than half of its area
  lies on VOID plus the crowd region of its own category.

Per category, ``PQ = sum(IoU of TPs) / (TP + FP/2 + FN/2)``, ``SQ = sum(IoU) / TP`` (0 without
TP) and ``RQ = TP / (TP + FP/2 + FN/2)``; "All", "Things" and "Stuff" average them over the
categories with ``TP + FP + FN > 0`` (a group without such categories averages to NaN).

The counting is vectorized with NumPy: segment ids are mapped to compact indices and one
``np.bincount`` on the combined (ground truth, prediction) index gives every intersection.
Ground-truth areas are counted on the PNG (panopticapi reads them from the json ``area``;
both agree for well-formed annotations).
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from segcore.data.panoptic_utils import rgb2id

__all__ = ["VOID", "PQStat", "PQStatCat", "pq_compute", "pq_compute_single_core", "pq_compute_single_image"]

logger = logging.getLogger(__name__)

#: Segment id of unlabeled pixels in COCO panoptic PNGs.
VOID = 0


@dataclass
class PQStatCat:
    """Counts of one category: summed IoU of the true positives, and TP / FP / FN counts."""

    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: "PQStatCat") -> "PQStatCat":
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


class PQStat:
    """Per-category :class:`PQStatCat` counts (keyed by dataset category id), summable with ``+=``."""

    def __init__(self):
        self.pq_per_cat: Dict[int, PQStatCat] = defaultdict(PQStatCat)

    def __getitem__(self, category_id: int) -> PQStatCat:
        return self.pq_per_cat[category_id]

    def __iadd__(self, other: "PQStat") -> "PQStat":
        for category_id, stat in other.pq_per_cat.items():
            self.pq_per_cat[category_id] += stat
        return self

    def pq_average(self, categories: Dict[int, dict], isthing: Optional[bool]) -> Tuple[dict, dict]:
        """Average PQ / SQ / RQ over ``categories`` (``{id: {"isthing": 0/1, ...}}``).

        Args:
            categories: the dataset's categories by id.
            isthing: True: things only; False: stuff only; None: all.

        Returns:
            ``({"pq", "sq", "rq", "n"}, {category_id: {"pq", "sq", "rq"}})``: fractions in [0, 1];
            ``n`` is the number of averaged categories (those with TP + FP + FN > 0); the
            averages are NaN when ``n == 0``. Categories left out get zeros per class, as
            panopticapi.
        """
        pq = sq = rq = 0.0
        n = 0
        per_class: Dict[int, dict] = {}
        for category_id, info in categories.items():
            if isthing is not None and (info.get("isthing", 0) == 1) != isthing:
                continue
            stat = self.pq_per_cat.get(category_id, PQStatCat())
            denominator = stat.tp + 0.5 * stat.fp + 0.5 * stat.fn
            if denominator == 0:
                per_class[category_id] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            n += 1
            pq_class = stat.iou / denominator
            sq_class = stat.iou / stat.tp if stat.tp != 0 else 0.0
            rq_class = stat.tp / denominator
            per_class[category_id] = {"pq": pq_class, "sq": sq_class, "rq": rq_class}
            pq += pq_class
            sq += sq_class
            rq += rq_class
        if n == 0:
            return {"pq": float("nan"), "sq": float("nan"), "rq": float("nan"), "n": 0}, per_class
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class


def _segments_arrays(segments_info: Sequence[dict], where: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.array([int(s["id"]) for s in segments_info], dtype=np.int64)
    cats = np.array([int(s["category_id"]) for s in segments_info], dtype=np.int64)
    crowd = np.array([int(s.get("iscrowd", 0)) == 1 for s in segments_info], dtype=bool)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{where}: repeated segment ids in segments_info: {ids.tolist()}")
    return ids, cats, crowd


def pq_compute_single_image(
    pan_gt: np.ndarray,
    gt_segments: Sequence[dict],
    pan_pred: np.ndarray,
    pred_segments: Sequence[dict],
    categories: Dict[int, dict],
    image_id: object = None,
) -> PQStat:
    """PQ counts of one image (the per-image body of panopticapi's ``pq_compute_single_core``).

    Args:
        pan_gt: int array (H, W) of ground-truth segment ids (0 = VOID).
        gt_segments: the ground truth's ``segments_info`` (``id``, ``category_id``, ``iscrowd``).
        pan_pred: int array (H, W) of predicted segment ids (0 = VOID).
        pred_segments: the prediction's ``segments_info`` (``id``, ``category_id``).
        categories: ``{category_id: {...}}`` of the dataset (predicted categories must be in it).
        image_id: used in error messages.

    Returns:
        a :class:`PQStat` with this image's counts.

    Raises:
        ValueError: the two maps differ in size, or segment ids repeat in a ``segments_info``.
        KeyError: a predicted id is in the PNG but not in ``segments_info`` (or the reverse), or
            a predicted segment has a category not in ``categories``.
    """
    where = f"Image {image_id}"
    if pan_gt.shape != pan_pred.shape:
        raise ValueError(f"{where}: ground truth is {pan_gt.shape} (HxW) but the prediction is {pan_pred.shape}")
    gt_ids, gt_cats, gt_crowd = _segments_arrays(gt_segments, where + " (ground truth)")
    pred_ids, pred_cats, _ = _segments_arrays(pred_segments, where + " (prediction)")
    unknown_cats = sorted(set(pred_cats.tolist()) - set(categories))
    if unknown_cats:
        raise KeyError(f"{where}: predicted segments have unknown category_id {unknown_cats}")

    # Compact indices: position in the segments list + 1; 0 = VOID or an id not in segments_info.
    gt_unique, gt_inverse = np.unique(pan_gt.reshape(-1), return_inverse=True)
    pred_unique, pred_inverse = np.unique(pan_pred.reshape(-1), return_inverse=True)
    pred_missing = sorted(set(pred_unique.tolist()) - set(pred_ids.tolist()) - {VOID})
    if pred_missing:
        raise KeyError(f"{where}: segment ids {pred_missing} are in the predicted PNG but not in its segments_info")
    pred_absent = sorted(set(pred_ids.tolist()) - set(pred_unique.tolist()))
    if pred_absent:
        raise KeyError(f"{where}: segment ids {pred_absent} are in the predicted segments_info but not in its PNG")

    def to_index(unique: np.ndarray, ids: np.ndarray) -> np.ndarray:
        lookup = {int(v): i + 1 for i, v in enumerate(ids.tolist())}
        return np.array([lookup.get(int(v), 0) for v in unique], dtype=np.int64)

    num_gt, num_pred = len(gt_ids) + 1, len(pred_ids) + 1
    gt_index = to_index(gt_unique, gt_ids)[gt_inverse]
    pred_index = to_index(pred_unique, pred_ids)[pred_inverse]
    # Rows: ground-truth segment (0: unlisted), columns: predicted segment (0: VOID).
    inter = np.bincount(gt_index * num_pred + pred_index, minlength=num_gt * num_pred).reshape(num_gt, num_pred)
    # Pixels of each predicted segment on ground-truth VOID (id 0, not merely unlisted ids).
    pred_on_void = np.bincount(pred_index[pan_gt.reshape(-1) == VOID], minlength=num_pred)[1:]
    gt_area = inter.sum(axis=1)[1:]
    pred_area = inter.sum(axis=0)[1:]
    inter = inter[1:, 1:]

    # Matching: same category, ground truth not crowd, IoU > 0.5.
    union = pred_area[None, :] + gt_area[:, None] - inter - pred_on_void[None, :]
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    candidate = (gt_cats[:, None] == pred_cats[None, :]) & ~gt_crowd[:, None] & (inter > 0)
    matched = candidate & (iou > 0.5)
    gt_matched = matched.any(axis=1)
    pred_matched = matched.any(axis=0)

    stat = PQStat()
    gi, pi = np.nonzero(matched)
    for g, p in zip(gi.tolist(), pi.tolist()):
        cat = stat[int(gt_cats[g])]
        cat.tp += 1
        cat.iou += float(iou[g, p])
    for g in np.nonzero(~gt_matched & ~gt_crowd)[0].tolist():
        stat[int(gt_cats[g])].fn += 1

    # One crowd region per category (the last listed, as panopticapi).
    crowd_of_category = {int(gt_cats[g]): g for g in np.nonzero(gt_crowd)[0].tolist()}
    for p in np.nonzero(~pred_matched)[0].tolist():
        category_id = int(pred_cats[p])
        ignored = int(pred_on_void[p])
        if category_id in crowd_of_category:
            ignored += int(inter[crowd_of_category[category_id], p])
        if ignored / pred_area[p] > 0.5:
            continue
        stat[category_id].fp += 1
    return stat


def _read_panoptic_png(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Panoptic PNG not found: {path}")
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"), dtype=np.uint32)
    return rgb2id(array).astype(np.int64)


def pq_compute_single_core(
    annotation_pairs: Iterable[Tuple[dict, dict]], gt_folder: str, pred_folder: str, categories: Dict[int, dict]
) -> PQStat:
    """PQ counts of a list of (ground-truth annotation, predicted annotation) pairs.

    Args:
        annotation_pairs: pairs of COCO panoptic annotations (``image_id``, ``file_name``,
            ``segments_info``) of the same image.
        gt_folder: folder of the ground-truth PNGs.
        pred_folder: folder of the predicted PNGs.
        categories: ``{category_id: {...}}``.

    Returns:
        the summed :class:`PQStat`.
    """
    stat = PQStat()
    for gt_ann, pred_ann in annotation_pairs:
        pan_gt = _read_panoptic_png(os.path.join(gt_folder, gt_ann["file_name"]))
        pan_pred = _read_panoptic_png(os.path.join(pred_folder, pred_ann["file_name"]))
        stat += pq_compute_single_image(
            pan_gt, gt_ann["segments_info"], pan_pred, pred_ann["segments_info"], categories, gt_ann.get("image_id")
        )
    return stat


def _load_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Panoptic json not found: {path}")
    with open(path) as f:
        return json.load(f)


def pq_compute(
    gt_json_file: str,
    pred_json_file: str,
    gt_folder: Optional[str] = None,
    pred_folder: Optional[str] = None,
    num_workers: int = 0,
) -> dict:
    """Panoptic quality of predictions against COCO-panoptic ground truth (panopticapi's ``pq_compute``).

    Args:
        gt_json_file: COCO panoptic json (``annotations``, ``categories`` with ``isthing``).
        pred_json_file: json whose ``annotations`` hold one prediction per ground-truth image
            (matched by ``image_id``); their ``category_id`` are dataset ids.
        gt_folder: folder of the ground-truth PNGs (default: ``gt_json_file`` without ``.json``).
        pred_folder: folder of the predicted PNGs (default: ``pred_json_file`` without ``.json``).
        num_workers: processes to split the images over (0 or 1: in this process).

    Returns:
        ``{"All": {"pq", "sq", "rq", "n"}, "Things": {...}, "Stuff": {...},
        "per_class": {category_id: {"pq", "sq", "rq"}}}``, fractions in [0, 1].

    Raises:
        FileNotFoundError: a json, folder or PNG is missing.
        KeyError: a ground-truth image has no prediction, or a prediction is inconsistent (see
            :func:`pq_compute_single_image`).
    """
    gt_json = _load_json(gt_json_file)
    pred_json = _load_json(pred_json_file)
    gt_folder = gt_folder if gt_folder is not None else gt_json_file.replace(".json", "")
    pred_folder = pred_folder if pred_folder is not None else pred_json_file.replace(".json", "")
    for folder, what in ((gt_folder, "ground truth"), (pred_folder, "prediction")):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Folder of the {what} panoptic PNGs not found: {folder}")
    categories = {int(c["id"]): c for c in gt_json["categories"]}

    predictions = {p["image_id"]: p for p in pred_json["annotations"]}
    pairs: List[Tuple[dict, dict]] = []
    for gt_ann in gt_json["annotations"]:
        if gt_ann["image_id"] not in predictions:
            raise KeyError(f"No prediction for the image with id {gt_ann['image_id']} (in {pred_json_file})")
        pairs.append((gt_ann, predictions[gt_ann["image_id"]]))

    if num_workers > 1 and len(pairs) > 1:
        chunks = [pairs[i::num_workers] for i in range(min(num_workers, len(pairs)))]
        with multiprocessing.get_context("spawn").Pool(len(chunks)) as pool:
            parts = pool.starmap(pq_compute_single_core, [(c, gt_folder, pred_folder, categories) for c in chunks])
        stat = PQStat()
        for part in parts:
            stat += part
    else:
        stat = pq_compute_single_core(pairs, gt_folder, pred_folder, categories)

    results: dict = {}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        results[name], per_class = stat.pq_average(categories, isthing=isthing)
        if name == "All":
            results["per_class"] = per_class
    logger.info("Panoptic quality of %d images: PQ %.3f", len(pairs), 100 * results["All"]["pq"])
    return results
