"""Video AP against the original YouTube-VIS API's numbers, and the evaluator's results.json.

The expected numbers (``tests/fixtures/ytvis_eval_original_api.json``) were computed by the API the
original release ships (Mask2Former 9b0651c, ``mask2former_video/data_video/datasets/ytvis_api``)
on the ground truth and predictions of :mod:`tests.mask2former_video.ytvis_eval_case` (perfect,
eroded, wrong class, false positive, missed track, a track that vanishes in some frames, a crowd
track, a low-scored true positive below eleven false positives). Both run the same float
operations in the same order, so the comparison is exact up to 1e-12.
"""
import json
import math
import os

import numpy as np
import pytest
import torch

from mask2former_video.evaluation import (STAT_NAMES, YTVISEvaluator, evaluate_ytvis, evaluate_ytvis_files,
                                          run_ytvis_eval, tube_iou)
from segcore.data import MetadataCatalog
from tests.mask2former_video.ytvis_eval_case import (CASES, box_mask, compressed_rle, ground_truth, prediction_tubes,
                                                     restricted, results)
from tests.paths import FIXTURES

with open(os.path.join(FIXTURES, "ytvis_eval_original_api.json")) as f:
    ORIGINAL = json.load(f)


@pytest.mark.parametrize("case", sorted(CASES))
def test_video_ap_equals_the_original_api(case):
    gt, records = restricted(ground_truth(), results(), CASES[case])
    ours = evaluate_ytvis(gt, records)
    assert list(ours) == list(STAT_NAMES)
    assert ours == pytest.approx(ORIGINAL[case]["stats"], abs=1e-12)
    precision = run_ytvis_eval(gt, records).eval["precision"]
    for k, cat in enumerate(sorted(c["id"] for c in gt["categories"])):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        expected = ORIGINAL[case]["per_category_AP"][str(cat)]
        assert (float(np.mean(p)) if p.size else None) == pytest.approx(expected, abs=1e-12)


def test_undefined_ranges_are_minus_one_and_the_case_covers_every_range():
    every = ORIGINAL["three_videos"]["stats"]
    assert all(v >= 0 for v in every.values())  # small, medium and large objects all present
    assert every["AR10"] != every["AR100"] and every["AR1"] != every["AR10"]
    one = evaluate_ytvis(*restricted(ground_truth(), results(), CASES["video_1_only"]))
    assert one["APs"] == one["ARs"] == -1


def test_tube_iou_sums_over_frames_and_counts_a_frame_with_one_mask_in_the_union():
    a = compressed_rle(box_mask((0, 0, 10, 10)))
    b = compressed_rle(box_mask((5, 0, 15, 10)))
    # frame 0: intersection 50, union 150; frame 1: only the prediction (100); frame 2: neither
    assert tube_iou([a, a, None], [b, None, None]) == pytest.approx(50 / 250)
    assert tube_iou([None], [None]) == 0.0


def test_a_result_for_an_unknown_video_is_an_error():
    records = results()
    records[0] = dict(records[0], video_id=99)
    with pytest.raises(ValueError, match="video 99"):
        evaluate_ytvis(ground_truth(), records)


@pytest.fixture
def ytvis_dataset(tmp_path):
    """A registered dataset whose json is the case's ground truth (the evaluator reads only metadata)."""
    gt_file = tmp_path / "valid.json"
    gt_file.write_text(json.dumps(ground_truth()))
    name = "test_ytvis_eval_case"
    MetadataCatalog.get(name).set(json_file=str(gt_file), evaluator_type="ytvis",
                                  thing_classes=["disc", "square", "ring"],
                                  thing_dataset_id_to_contiguous_id={1: 0, 2: 1, 3: 2})
    yield name, str(gt_file)
    MetadataCatalog.remove(name)


def test_evaluator_writes_the_servers_results_json_and_gives_the_apis_numbers(ytvis_dataset, tmp_path):
    name, gt_file = ytvis_dataset
    out_dir = tmp_path / "inference"
    evaluator = YTVISEvaluator(name, distributed=False, output_dir=str(out_dir))
    evaluator.reset()
    for video in (1, 2, 3):  # the model's output of each video, contiguous labels
        preds = [p for p in prediction_tubes() if p[0] == video]
        tubes = [torch.stack([torch.from_numpy(box_mask(b) if b is not None else np.zeros((300, 400), bool))
                              for b in boxes]) for _, _, _, boxes in preds]
        evaluator.process([{"video_id": video, "length": 4}],
                          {"image_size": (300, 400), "pred_scores": [s for _, s, _, _ in preds],
                           "pred_labels": [c - 1 for _, _, c, _ in preds], "pred_masks": tubes})
    metrics = evaluator.evaluate()["segm"]
    with open(out_dir / "results.json") as f:
        written = json.load(f)
    assert written == results()  # dataset category ids, one compressed RLE (str counts) per frame
    assert all(set(r) == {"video_id", "score", "category_id", "segmentations"} for r in written)
    expected = ORIGINAL["three_videos"]["stats"]
    assert evaluate_ytvis_files(gt_file, str(out_dir / "results.json")) == pytest.approx(expected, abs=1e-12)
    for key in STAT_NAMES:
        assert metrics[key] == pytest.approx(100 * expected[key], abs=1e-9)
    assert metrics["AP-disc"] == pytest.approx(100 * ORIGINAL["three_videos"]["per_category_AP"]["1"], abs=1e-9)
    assert math.isnan(metrics["AP-ring"])  # no ground truth of that class
    saved = torch.load(out_dir / "instances_predictions.pth", weights_only=False)
    assert [r["category_id"] for r in saved] == [c - 1 for _, _, c, _ in prediction_tubes()]  # contiguous


def test_evaluator_of_a_split_without_annotations_only_writes_results(tmp_path):
    gt = dict(ground_truth(), annotations=[])
    (tmp_path / "test.json").write_text(json.dumps(gt))
    name = "test_ytvis_eval_no_annotations"
    MetadataCatalog.get(name).set(json_file=str(tmp_path / "test.json"), thing_dataset_id_to_contiguous_id={1: 0})
    try:
        evaluator = YTVISEvaluator(name, distributed=False, output_dir=str(tmp_path / "out"))
        evaluator.process([{"video_id": 1}], {"image_size": (300, 400), "pred_scores": [0.5], "pred_labels": [0],
                                              "pred_masks": [torch.zeros((4, 300, 400), dtype=torch.bool)]})
        assert evaluator.evaluate() == {}
        assert json.loads((tmp_path / "out" / "results.json").read_text())[0]["category_id"] == 1
    finally:
        MetadataCatalog.remove(name)
