"""A small YouTube-VIS ground truth and constructed predictions, for comparing video AP with the
original YouTube-VIS API (``tests/fixtures/ytvis_eval_original_api.json`` holds the API's numbers
for exactly these inputs; see tests/fixtures/README.md).

Three videos of 4 frames (300 x 400), categories 1, 2, 3 (3 has no ground truth). Masks are
rectangles, so the mean areas fall in every size range (small < 128^2 <= medium < 256^2 <= large).
The predictions cover the cases the API treats differently:

- video 1: track 1 (category 1, large) predicted perfectly; track 2 (category 2, medium) predicted
  eroded by 8 pixels (IoU ~0.75); the same region predicted with the wrong class (category 1); a
  confident false positive of category 2;
- video 2: track 3 (category 1, small) vanishes in frames 2 and 3 (null there), predicted once
  vanishing with it and once not (lower score); track 4 (category 2) is missed; track 5 is a crowd
  track (ignored);
- video 3: track 6 (category 1, medium) predicted shifted (IoU ~0.6) with a low score below eleven
  small false positives of its class (so AR10 and AR100 differ), and a prediction of category 3.

Ground-truth segmentations use the three forms a YouTube-VIS json may hold: compressed RLE (str
counts), uncompressed RLE (counts list, as the 2019 json) and polygons.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util

HEIGHT, WIDTH, FRAMES = 300, 400, 4
#: (video, x0, y0, x1, y1) boxes per frame of each track, None where absent
Box = Optional[Tuple[int, int, int, int]]


def box_mask(box: Box) -> Optional[np.ndarray]:
    """bool (HEIGHT, WIDTH) of the box [x0, x1) x [y0, y1), or None."""
    if box is None:
        return None
    x0, y0, x1, y1 = box
    m = np.zeros((HEIGHT, WIDTH), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (column-major run lengths starting with zeros)."""
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": [HEIGHT, WIDTH], "counts": [int(c) for c in counts]}


def polygon(box: Tuple[int, int, int, int]) -> List[List[float]]:
    """The box's outline as a polygon whose rasterization is the box (pixel edges)."""
    x0, y0, x1, y1 = box
    return [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]


def _moving(x0, y0, w, h, dx, dy) -> List[Box]:
    return [(x0 + dx * t, y0 + dy * t, x0 + dx * t + w, y0 + dy * t + h) for t in range(FRAMES)]


#: track id -> (video id, category id, iscrowd, per-frame boxes, segmentation form)
TRACKS = {
    1: (1, 1, 0, _moving(20, 20, 300, 240, 5, 2), "compressed"),                       # large
    2: (1, 2, 0, _moving(200, 40, 150, 150, -6, 4), "uncompressed"),                   # medium
    3: (2, 1, 0, [(30, 30, 100, 90), None, None, (50, 40, 120, 100)], "compressed"),   # small, vanishes
    4: (2, 2, 0, _moving(200, 100, 160, 150, 3, 3), "polygon"),                        # medium, missed
    5: (2, 2, 1, _moving(10, 200, 80, 60, 0, 0), "compressed"),                        # crowd
    6: (3, 1, 0, _moving(100, 60, 180, 170, 4, -3), "compressed"),                     # medium
}


def _segmentation(box: Box, form: str):
    if box is None:
        return None
    mask = box_mask(box)
    if form == "uncompressed":
        return uncompressed_rle(mask)
    if form == "polygon":
        return polygon(box)
    return compressed_rle(mask)


def ground_truth() -> dict:
    """The YouTube-VIS json dict of the three videos."""
    videos = [{"id": v, "width": WIDTH, "height": HEIGHT, "length": FRAMES,
               "file_names": [f"video{v}/{t:05d}.jpg" for t in range(FRAMES)]} for v in (1, 2, 3)]
    annotations = []
    for track, (video, category, crowd, boxes, form) in TRACKS.items():
        annotations.append({
            "id": track, "video_id": video, "category_id": category, "iscrowd": crowd,
            "width": WIDTH, "height": HEIGHT, "length": 1,
            "segmentations": [_segmentation(b, form) for b in boxes],
            "bboxes": [None if b is None else [b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes],
            "areas": [None if b is None else (b[2] - b[0]) * (b[3] - b[1]) for b in boxes]})
    categories = [{"id": i, "name": name, "supercategory": "object"} for i, name in
                  ((1, "disc"), (2, "square"), (3, "ring"))]
    return {"videos": videos, "annotations": annotations, "categories": categories}


def _eroded(boxes: List[Box], by: int) -> List[Box]:
    return [None if b is None else (b[0] + by, b[1] + by, b[2] - by, b[3] - by) for b in boxes]


def _shifted(boxes: List[Box], dx: int, dy: int) -> List[Box]:
    return [None if b is None else (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy) for b in boxes]


def prediction_tubes() -> List[Tuple[int, float, int, List[Box]]]:
    """(video id, score, dataset category id, per-frame boxes) of every prediction, in output order."""
    preds = [
        (1, 0.90, 1, TRACKS[1][3]),                   # perfect
        (1, 0.80, 2, _eroded(TRACKS[2][3], 8)),       # eroded
        (1, 0.85, 1, TRACKS[2][3]),                   # wrong class
        (1, 0.95, 2, _moving(10, 260, 60, 30, 1, 0)),  # false positive
        (2, 0.70, 1, TRACKS[3][3]),                   # vanishes with the track
        (2, 0.60, 1, [(30, 30, 100, 90)] * 2 + [(40, 35, 110, 95), (50, 40, 120, 100)]),  # does not vanish
        (3, 0.05, 1, _shifted(TRACKS[6][3], 40, 20)),  # shifted, low score
        (3, 0.30, 3, _moving(300, 200, 50, 50, 0, 0)),  # a category without ground truth
    ]
    for k in range(11):  # small false positives above the shifted true positive
        preds.append((3, 0.5 - 0.01 * k, 1, _moving(5 + 30 * k, 250, 20, 20, 0, 0)))
    return preds


def results() -> List[dict]:
    """The predictions as a results file's records (compressed RLE, null-free: an absent frame is
    an empty mask, as a model's output)."""
    out = []
    for video, score, category, boxes in prediction_tubes():
        segms = [compressed_rle(box_mask(b) if b is not None else np.zeros((HEIGHT, WIDTH), bool)) for b in boxes]
        out.append({"video_id": video, "score": score, "category_id": category, "segmentations": segms})
    return out


def restricted(gt: dict, records: List[dict], videos) -> Tuple[dict, List[dict]]:
    """The ground truth and records of ``videos`` only (the second case: no small object, so the
    small-range numbers are undefined, -1)."""
    keep = set(videos)
    sub = dict(gt, videos=[v for v in gt["videos"] if v["id"] in keep],
               annotations=[a for a in gt["annotations"] if a["video_id"] in keep])
    return sub, [r for r in records if r["video_id"] in keep]


#: the cases of the fixture: name -> videos kept
CASES = {"three_videos": (1, 2, 3), "video_1_only": (1,)}
