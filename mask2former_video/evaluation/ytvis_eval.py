"""Video AP as the YouTube-VIS API computes it (the ``YTVOSeval`` of youtubevos/cocoapi, which the
original ships as ``mask2former_video/data_video/datasets/ytvis_api/ytvoseval.py``).

The API is COCO's evaluation with videos in place of images: its matching of detections to
ground truth (``evaluateImg``), its accumulation over recall thresholds (``accumulate``) and its
12 summary numbers (``summarize``) are pycocotools' :class:`~pycocotools.cocoeval.COCOeval` line for
line, so :class:`YTVISeval` subclasses it and changes only what differs:

- **IoU** (:func:`tube_iou`): spatio-temporal over a track: the intersections of all frames summed,
  divided by the unions summed. A frame where only one of the two has a mask adds that mask's area
  to the union; a frame where neither has one adds nothing; 0 when the union is empty. No crowd
  rule (a crowd track is only ignored in the matching).
- **Area** (:func:`mean_area`): a track's mean area over the frames where it has a non-empty mask
  (from the json's ``areas`` for ground truth, from the masks for detections; 0 when none), with
  the YouTube-VIS ranges ``small`` < 128^2 <= ``medium`` < 256^2 <= ``large`` (:data:`AREA_RANGES`,
  bounds inclusive on both sides as in COCO).
- **Data**: ground truth is a YouTube-VIS json dict (``videos``, ``annotations`` with per-frame
  ``segmentations`` / ``areas``, ``categories``); detections are the results-file records
  ``{"video_id", "category_id", "score", "segmentations": [RLE] * T}`` (dataset category ids).

Every video and category of the ground truth is evaluated; detections of other categories are
ignored; detections of unknown videos are an error (as the API's ``loadRes``). ``maxDets`` is
[1, 10, 100].
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
from collections import defaultdict
from typing import Dict, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.cocoeval import COCOeval

__all__ = ["AREA_RANGES", "STAT_NAMES", "YTVISeval", "evaluate_ytvis", "evaluate_ytvis_files", "mean_area", "run_ytvis_eval",
           "tube_iou"]

#: the YouTube-VIS API's area ranges (pixels, a track's mean area), [min, max] inclusive
AREA_RANGES = [[0 ** 2, 1e5 ** 2], [0 ** 2, 128 ** 2], [128 ** 2, 256 ** 2], [256 ** 2, 1e5 ** 2]]
AREA_LABELS = ["all", "small", "medium", "large"]
#: the names of ``COCOeval.stats``'s 12 numbers, in order
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _to_rle(segm, height: int, width: int) -> Optional[dict]:
    """One frame's segmentation as an RLE (polygons merged, uncompressed RLE compressed); None when
    the frame has none (``None``, ``[]``, ``{}``)."""
    if not segm:
        return None
    if isinstance(segm, list):
        return mask_util.merge(mask_util.frPyObjects(segm, height, width))
    if isinstance(segm.get("counts"), list):
        return mask_util.frPyObjects(segm, height, width)
    return segm


def mean_area(areas: Sequence[Optional[float]]) -> float:
    """A track's area for the size ranges: the mean of its non-empty frames' areas (``None`` and 0
    are skipped), 0 when it has none."""
    present = [a for a in areas if a]
    return float(np.array(present).mean()) if present else 0


def tube_iou(dt: Sequence[Optional[dict]], gt: Sequence[Optional[dict]]) -> float:
    """Spatio-temporal IoU of two tracks given as per-frame RLEs (None where absent): the sum over
    frames of the intersections over the sum of the unions (frames paired up to the shorter
    track). 0 when the union is empty."""
    inter, union = 0.0, 0.0
    for d, g in zip(dt, gt):
        if d and g:
            inter += mask_util.area(mask_util.merge([d, g], True))
            union += mask_util.area(mask_util.merge([d, g], False))
        elif g:
            union += mask_util.area(g)
        elif d:
            union += mask_util.area(d)
    return inter / union if union > 0.0 else 0.0


class YTVISeval(COCOeval):
    """pycocotools' ``COCOeval`` over videos with the YouTube-VIS API's IoU and areas (module docstring).

    Args:
        gt: a YouTube-VIS json dict (not modified).
        results: detection records ``{"video_id", "category_id", "score", "segmentations"}``
            (not modified); ``segmentations`` are per-frame compressed RLEs (``counts`` str or bytes).

    Use as ``COCOeval``: ``evaluate()``, ``accumulate()``, ``summarize()`` (then ``stats``: the 12
    numbers of :data:`STAT_NAMES`, fractions, -1 where undefined), or :func:`evaluate_ytvis`.
    ``params.imgIds`` holds the video ids.

    Raises:
        ValueError: a detection names a video that the ground truth does not have, or lacks a key.
    """

    def __init__(self, gt: dict, results: Sequence[dict]):
        super().__init__(iouType="segm")
        self._videos = {v["id"]: v for v in gt.get("videos", [])}
        self._gt_anns = [self._prepared(a, from_masks=False) for a in gt.get("annotations", []) or []]
        self._dt_anns = []
        for i, r in enumerate(results):
            missing = [k for k in ("video_id", "category_id", "score", "segmentations") if k not in r]
            if missing:
                raise ValueError(f"YTVISeval: result {i} lacks {missing}")
            if r["video_id"] not in self._videos:
                raise ValueError(f"YTVISeval: result {i} is for video {r['video_id']}, which the ground truth lacks")
            det = self._prepared(r, from_masks=True)
            det.update(id=i + 1, iscrowd=0)
            self._dt_anns.append(det)
        p = self.params
        p.imgIds = sorted(self._videos)
        p.catIds = sorted(c["id"] for c in gt.get("categories", []))
        p.areaRng = copy.deepcopy(AREA_RANGES)
        p.areaRngLbl = list(AREA_LABELS)
        p.maxDets = [1, 10, 100]

    def _prepared(self, ann: dict, from_masks: bool) -> dict:
        """A copy of a track with RLE ``segmentations`` and its mean ``area`` (from its masks for
        detections, from its ``areas`` for ground truth)."""
        ann = dict(ann)
        video = self._videos.get(ann["video_id"])
        if video is None:
            ann["segmentations"] = []
            ann["area"] = 0
            return ann
        segms = [_to_rle(s, video["height"], video["width"]) for s in ann["segmentations"]]
        ann["segmentations"] = segms
        areas = [mask_util.area(s) if s else None for s in segms] if from_masks else ann.get("areas", [])
        ann["area"] = mean_area(areas)
        return ann

    def _prepare(self) -> None:
        """Group the tracks by (video, category) in file order, ground-truth crowds as ignored."""
        p = self.params
        videos, cats = set(p.imgIds), set(p.catIds)
        self._gts, self._dts = defaultdict(list), defaultdict(list)
        for gt in self._gt_anns:
            if gt["video_id"] in videos and gt["category_id"] in cats:
                gt["iscrowd"] = int(gt.get("iscrowd", 0))
                gt["ignore"] = bool(gt["iscrowd"])
                self._gts[gt["video_id"], gt["category_id"]].append(gt)
        for dt in self._dt_anns:
            if dt["video_id"] in videos and dt["category_id"] in cats:
                self._dts[dt["video_id"], dt["category_id"]].append(dt)
        self.evalImgs = defaultdict(list)
        self.eval = {}

    def computeIoU(self, vidId, catId):  # noqa: N802 (COCOeval's name)
        """(D, G) tube IoUs of the video's detections (by decreasing score, at most maxDets[-1]) and
        ground-truth tracks of one category; [] when it has neither."""
        gt, dt = self._gts[vidId, catId], self._dts[vidId, catId]
        if len(gt) == 0 and len(dt) == 0:
            return []
        order = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dt = [dt[i] for i in order][: self.params.maxDets[-1]]
        ious = np.zeros([len(dt), len(gt)])
        for i, j in np.ndindex(ious.shape):
            ious[i, j] = tube_iou(dt[i]["segmentations"], gt[j]["segmentations"])
        return ious


def run_ytvis_eval(gt: dict, results: Sequence[dict]) -> YTVISeval:
    """:class:`YTVISeval` of ``results`` on ``gt``, evaluated, accumulated and summarized (its printing
    silenced): ``.stats`` holds the 12 numbers, ``.eval["precision"]`` the (T, R, K, A, M) precisions.

    Raises:
        ValueError: see :class:`YTVISeval`.
    """
    ev = YTVISeval(gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def evaluate_ytvis(gt: dict, results: Sequence[dict]) -> Dict[str, float]:
    """The 12 summary numbers of the YouTube-VIS API for ``results`` on ``gt``.

    Args:
        gt: a YouTube-VIS json dict. results: detection records (see :class:`YTVISeval`).

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}``
        as fractions in [0, 1], -1 where undefined (no ground truth in that size range); all -1
        without results (the original reports no numbers then).

    Raises:
        ValueError: see :class:`YTVISeval`.
    """
    if len(results) == 0:
        return {name: -1.0 for name in STAT_NAMES}
    return {name: float(v) for name, v in zip(STAT_NAMES, run_ytvis_eval(gt, results).stats)}


def evaluate_ytvis_files(gt_file: str, results_file: str) -> Dict[str, float]:
    """:func:`evaluate_ytvis` of a saved ``results.json`` (the evaluation server's format, as
    :class:`~mask2former_video.evaluation.YTVISEvaluator` writes it) on a YouTube-VIS json
    (``tools/evaluate_ytvis.py``).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a file is not JSON, the ground truth has no ``videos`` / ``annotations``, the
            results are not a list of records, or a record names an unknown video.
    """
    def read(path: str, what: str):
        try:
            with open(path, "r", encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{what} file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{what} file {path} is not JSON: {e}") from None

    gt = read(gt_file, "YouTube-VIS ground-truth")
    if not isinstance(gt, dict) or "videos" not in gt or not gt.get("annotations"):
        raise ValueError(f"{gt_file} is not a YouTube-VIS json with annotations (a dict with 'videos' and "
                         "'annotations'; a test split without annotations is evaluated by the server)")
    results = read(results_file, "results")
    if not isinstance(results, list):
        raise ValueError(f"{results_file} is not a results file (a list of records with video_id, category_id, "
                         "score, segmentations)")
    return evaluate_ytvis(gt, results)
