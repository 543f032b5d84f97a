"""COCOEvaluator (segm AP) on tiny COCO instance jsons written in tmp_path."""
import json
import uuid

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from segcore.config import CfgNode
from segcore.data import MetadataCatalog
from segcore.evaluation import COCOEvaluator, build_evaluator
from segcore.structures import Instances

H = W = 20


def _square(y0, x0, size):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y0 + size, x0:x0 + size] = True
    return m


GT_MASKS = [(_square(2, 2, 6), 7), (_square(10, 10, 8), 7), (_square(2, 12, 5), 9)]  # (mask, dataset category)


def _register(tmp_path, gt_masks=GT_MASKS):
    annotations = []
    for i, (mask, cat) in enumerate(gt_masks):
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        annotations.append({"id": i + 1, "image_id": 1, "category_id": cat, "segmentation": rle, "iscrowd": 0,
                            "area": float(mask.sum()), "bbox": mask_util.toBbox(rle).tolist()})
    coco = {"images": [{"id": 1, "width": W, "height": H, "file_name": "a.jpg"}], "annotations": annotations,
            "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "dog"}]}
    path = tmp_path / f"instances_{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(coco))
    name = f"test_coco_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(name).set(json_file=str(path), thing_classes=["cat", "dog"],
                                  thing_dataset_id_to_contiguous_id={7: 0, 9: 1}, evaluator_type="coco")
    return name


def _instances(masks, scores, classes):
    inst = Instances((H, W))
    inst.pred_masks = torch.from_numpy(np.stack(masks))
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
    return inst


def _run(evaluator, instances):
    evaluator.reset()
    evaluator.process([{"image_id": 1, "file_name": "a.jpg"}], [{"instances": instances}])
    return evaluator.evaluate()


@pytest.mark.parametrize("fast", [False, True])
def test_perfect_predictions_give_ap_100(tmp_path, fast):
    if fast:
        pytest.importorskip("faster_coco_eval")
    name = _register(tmp_path)
    inst = _instances([m for m, _ in GT_MASKS], [0.9, 0.8, 0.7], [0, 0, 1])
    res = _run(COCOEvaluator(name, distributed=False, output_dir=str(tmp_path / "out"), use_fast_impl=fast), inst)
    segm = res["segm"]
    assert segm["AP"] == pytest.approx(100.0)
    assert segm["AP-cat"] == pytest.approx(100.0) and segm["AP-dog"] == pytest.approx(100.0)
    assert np.isnan(segm["APl"])  # no large (> 96^2 px) ground truth
    assert (tmp_path / "out" / "coco_instances_results.json").exists()


def test_false_positive_above_true_positive_by_hand(tmp_path):
    # One ground-truth cat; detections sorted by score: a FP (0.9, disjoint mask) then an exact TP
    # (0.8). Cumulative precision (0/1, 1/2) at recall (0, 1); COCO's interpolated precision is
    # the max precision at recall >= r, i.e. 0.5 at all 101 recall points, for every IoU
    # threshold: AP = AP50 = AP75 = 50. The mask (36 px) is "small": APs = 50, APm = APl = NaN.
    name = _register(tmp_path, gt_masks=[GT_MASKS[0]])
    inst = _instances([_square(12, 12, 6), GT_MASKS[0][0]], [0.9, 0.8], [0, 0])
    segm = _run(COCOEvaluator(name, distributed=False), inst)["segm"]
    assert segm["AP"] == pytest.approx(50.0)
    assert segm["AP50"] == pytest.approx(50.0) and segm["AP75"] == pytest.approx(50.0)
    assert segm["APs"] == pytest.approx(50.0)
    assert np.isnan(segm["APm"]) and np.isnan(segm["APl"])
    # Swapping the scores puts the TP first: AP 100.
    inst = _instances([_square(12, 12, 6), GT_MASKS[0][0]], [0.8, 0.9], [0, 0])
    assert _run(COCOEvaluator(name, distributed=False), inst)["segm"]["AP"] == pytest.approx(100.0)


def test_fast_impl_gives_identical_numbers(tmp_path):
    pytest.importorskip("faster_coco_eval")
    name = _register(tmp_path)
    rng = np.random.default_rng(0)
    masks = [np.roll(m, int(rng.integers(-2, 3)), axis=1) for m, _ in GT_MASKS] + [_square(0, 0, 4)]
    inst = _instances(masks, [0.5, 0.9, 0.7, 0.95], [0, 0, 1, 1])
    slow = _run(COCOEvaluator(name, tasks=("segm", "bbox"), distributed=False), inst)
    fast = _run(COCOEvaluator(name, tasks=("segm", "bbox"), distributed=False, use_fast_impl=True), inst)
    for task in ("segm", "bbox"):
        assert set(slow[task]) == set(fast[task])
        for k, v in slow[task].items():
            assert v == pytest.approx(fast[task][k], nan_ok=True), (task, k)


def test_unknown_category_and_missing_json_are_errors(tmp_path):
    name = _register(tmp_path)
    inst = _instances([GT_MASKS[0][0]], [0.9], [5])
    with pytest.raises(KeyError, match="not a contiguous thing id"):
        _run(COCOEvaluator(name, distributed=False), inst)
    missing = f"test_coco_missing_{uuid.uuid4().hex[:6]}"
    MetadataCatalog.get(missing).set(json_file=str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        COCOEvaluator(missing)


def test_registry_coco_type(tmp_path):
    name = _register(tmp_path)
    assert isinstance(build_evaluator(CfgNode({"OUTPUT_DIR": str(tmp_path)}), name), COCOEvaluator)
