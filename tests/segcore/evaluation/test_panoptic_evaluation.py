"""Panoptic quality (segcore.evaluation.panoptic_quality) and COCOPanopticEvaluator.

The hand-built case (H=4, W=10; categories: 1 person and 2 car are things, 3 sky and 4 tree
are stuff; tree appears nowhere)::

    ground truth                         prediction
    row 0: VOID (10 px)                  cols 0-5: seg 3 person | cols 6-9: VOID
    row 1: seg 10 person (10 px)         cols 0-5: seg 1 person | cols 6-9: seg 2 car
    row 2: cols 0-4 seg 20 car (5 px)    cols 0-1: seg 3 person | cols 2-9: seg 5 car
           cols 5-9 seg 30 car CROWD
    row 3: seg 40 sky (10 px)            seg 4 sky (10 px)

* pred 1 vs gt 10 (person): inter 6, union 6 + 10 - 6 - 0 (void) = 10, IoU 0.6 > 0.5: TP.
* pred 3 (person, 8 px): 6 px on VOID -> 6/8 = 0.75 > 0.5 of its area is ignored: not a FP.
* pred 2 (car, 4 px, on the person): matches nothing, no VOID / crowd: FP of car.
* pred 5 (car, 8 px): IoU with gt 20 = 3 / (8 + 5 - 3) = 0.3, no match; 5 px on the car crowd
  region -> 5/8 = 0.625 ignored: not a FP.
* gt 20 (car) unmatched: FN of car; gt 30 is crowd: ignored.  pred 4 vs gt 40: IoU 1, TP.

Per category: person PQ 0.6 SQ 0.6 RQ 1; car TP 0, FP 1, FN 1 -> PQ 0 SQ 0 RQ 0;
sky PQ 1 SQ 1 RQ 1; tree has no TP+FP+FN and is left out.
All (n=3): PQ = SQ = (0.6 + 0 + 1) / 3 = 0.5333, RQ = 2/3. Things (n=2): PQ = SQ = 0.3,
RQ = 0.5. Stuff (n=1): 1, 1, 1.
"""
import json
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from segcore.config import CfgNode
from segcore.data import MetadataCatalog
from segcore.data.panoptic_utils import id2rgb
from segcore.evaluation import (
    COCOPanopticEvaluator,
    DatasetEvaluator,
    SemSegEvaluator,
    build_evaluator,
    pq_compute,
)
from segcore.evaluation.panoptic_quality import pq_compute_single_image
from segcore.modeling import META_ARCH_REGISTRY

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 2, "name": "car", "isthing": 1},
    {"id": 3, "name": "sky", "isthing": 0},
    {"id": 4, "name": "tree", "isthing": 0},
]
CATS = {c["id"]: c for c in CATEGORIES}
THING_MAP = {1: 0, 2: 1}
STUFF_MAP = {3: 2, 4: 3}


def _gt(crowd: bool = True):
    gt = np.zeros((4, 10), dtype=np.int64)
    gt[1] = 10
    gt[2, :5] = 20
    gt[2, 5:] = 30
    gt[3] = 40
    segments = [
        {"id": 10, "category_id": 1, "iscrowd": 0},
        {"id": 20, "category_id": 2, "iscrowd": 0},
        {"id": 30, "category_id": 2, "iscrowd": int(crowd)},
        {"id": 40, "category_id": 3, "iscrowd": 0},
    ]
    return gt, segments


def _pred():
    pred = np.zeros((4, 10), dtype=np.int64)
    pred[0, :6] = 3
    pred[1, :6] = 1
    pred[1, 6:] = 2
    pred[2, :2] = 3
    pred[2, 2:] = 5
    pred[3] = 4
    segments = [
        {"id": 1, "category_id": 1},
        {"id": 2, "category_id": 2},
        {"id": 3, "category_id": 1},
        {"id": 4, "category_id": 3},
        {"id": 5, "category_id": 2},
    ]
    return pred, segments


def test_single_image_counts_by_hand():
    gt, gt_segments = _gt()
    pred, pred_segments = _pred()
    stat = pq_compute_single_image(gt, gt_segments, pred, pred_segments, CATS)
    assert (stat[1].tp, stat[1].fp, stat[1].fn) == (1, 0, 0)
    assert stat[1].iou == pytest.approx(0.6)
    assert (stat[2].tp, stat[2].fp, stat[2].fn) == (0, 1, 1)
    assert (stat[3].tp, stat[3].fp, stat[3].fn) == (1, 0, 0)
    assert stat[3].iou == pytest.approx(1.0)
    assert 4 not in stat.pq_per_cat

    averages, per_class = stat.pq_average(CATS, isthing=None)
    assert averages["n"] == 3
    assert averages["pq"] == pytest.approx(1.6 / 3)
    assert averages["sq"] == pytest.approx(1.6 / 3)
    assert averages["rq"] == pytest.approx(2 / 3)
    assert per_class[1] == pytest.approx({"pq": 0.6, "sq": 0.6, "rq": 1.0})
    things, _ = stat.pq_average(CATS, isthing=True)
    assert (things["pq"], things["sq"], things["rq"], things["n"]) == pytest.approx((0.3, 0.3, 0.5, 2))
    stuff, _ = stat.pq_average(CATS, isthing=False)
    assert (stuff["pq"], stuff["n"]) == (1.0, 1)


def test_crowd_region_decides_false_positive():
    # Without the crowd flag, gt 30 is an ordinary car: it is missed (FN) and pred 5, whose IoU
    # with it is 5 / (8 + 5 - 5) = 0.625 > 0.5, matches it: car TP 1 (IoU 0.625), FP 1 (pred 2), FN 1 (gt 20).
    gt, gt_segments = _gt(crowd=False)
    pred, pred_segments = _pred()
    stat = pq_compute_single_image(gt, gt_segments, pred, pred_segments, CATS)
    assert (stat[2].tp, stat[2].fp, stat[2].fn) == (1, 1, 1)
    assert stat[2].iou == pytest.approx(0.625)


def test_void_region_decides_false_positive():
    # Relabel gt row 0 from VOID to a person segment: pred 3 (6 px there) is no longer ignored;
    # its IoU with that gt (10 px) is 6 / (8 + 10 - 6) = 0.5, not > 0.5: unmatched, so FP + FN.
    gt, gt_segments = _gt()
    gt[0] = 50
    gt_segments.append({"id": 50, "category_id": 1, "iscrowd": 0})
    pred, pred_segments = _pred()
    stat = pq_compute_single_image(gt, gt_segments, pred, pred_segments, CATS)
    assert (stat[1].tp, stat[1].fp, stat[1].fn) == (1, 1, 1)


def test_inconsistent_prediction_is_an_error():
    gt, gt_segments = _gt()
    pred, pred_segments = _pred()
    with pytest.raises(KeyError, match="not in its segments_info"):
        pq_compute_single_image(gt, gt_segments, pred, pred_segments[1:], CATS, image_id=7)
    with pytest.raises(KeyError, match="unknown category_id"):
        pq_compute_single_image(gt, gt_segments, pred, pred_segments + [{"id": 9, "category_id": 99}], CATS)


def _write_dataset(tmp_path, images):
    """COCO panoptic folder: gt/<name>.png + gt.json, from [(name, id_map, segments_info)]."""
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir(parents=True)
    annotations, image_infos = [], []
    for image_id, (name, id_map, segments) in enumerate(images):
        Image.fromarray(id2rgb(id_map)).save(gt_dir / f"{name}.png")
        segments = [dict(s, area=int((id_map == s["id"]).sum()), bbox=[0, 0, 1, 1]) for s in segments]
        annotations.append({"image_id": image_id, "file_name": f"{name}.png", "segments_info": segments})
        image_infos.append({"id": image_id, "file_name": f"{name}.jpg", "height": id_map.shape[0],
                            "width": id_map.shape[1]})
    gt_json = tmp_path / "gt.json"
    gt_json.write_text(json.dumps({"images": image_infos, "annotations": annotations, "categories": CATEGORIES}))
    return str(gt_json), str(gt_dir)


def test_pq_compute_files_and_workers(tmp_path):
    gt, gt_segments = _gt()
    pred, pred_segments = _pred()
    gt_json, gt_dir = _write_dataset(tmp_path, [("a", gt, gt_segments), ("b", gt, gt_segments)])
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    Image.fromarray(id2rgb(pred)).save(pred_dir / "a.png")
    Image.fromarray(id2rgb(gt)).save(pred_dir / "b.png")
    pred_json = tmp_path / "pred.json"
    pred_json.write_text(json.dumps({"annotations": [
        {"image_id": 0, "file_name": "a.png", "segments_info": pred_segments},
        {"image_id": 1, "file_name": "b.png", "segments_info": gt_segments},
    ]}))
    # Image b is perfect: person TP 2 (IoU 0.6 + 1), car TP 1 FP 1 FN 1, sky TP 2.
    # person PQ 1.6/2 = 0.8, car PQ 1/2 = 0.5, sky 1 -> All PQ 2.3/3; Things PQ 0.65.
    expected_all = 2.3 / 3
    res = pq_compute(gt_json, str(pred_json), gt_folder=gt_dir, pred_folder=str(pred_dir))
    assert res["All"]["pq"] == pytest.approx(expected_all)
    assert res["Things"]["pq"] == pytest.approx(0.65)
    assert res["per_class"][4] == {"pq": 0.0, "sq": 0.0, "rq": 0.0}
    res2 = pq_compute(gt_json, str(pred_json), gt_folder=gt_dir, pred_folder=str(pred_dir), num_workers=2)
    assert res2["All"] == pytest.approx(res["All"])


def _register_panoptic(tmp_path, images, evaluator_type="coco_panoptic_seg"):
    gt_json, gt_dir = _write_dataset(tmp_path / evaluator_type, images)
    name = f"test_panoptic_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(name).set(
        panoptic_json=gt_json, panoptic_root=gt_dir, thing_dataset_id_to_contiguous_id=THING_MAP,
        stuff_dataset_id_to_contiguous_id=STUFF_MAP, label_divisor=1000, evaluator_type=evaluator_type,
        stuff_classes=["person", "car", "sky", "tree"], ignore_label=255,
    )
    return name


def _to_contiguous(segments):
    out = []
    for s in segments:
        isthing = CATS[s["category_id"]]["isthing"] == 1
        mapping = THING_MAP if isthing else STUFF_MAP
        out.append({"id": s["id"], "category_id": mapping[s["category_id"]], "isthing": isthing})
    return out


def test_evaluator_perfect_and_degraded(tmp_path):
    gt, gt_segments = _gt()
    name = _register_panoptic(tmp_path, [("img0", gt, gt_segments)])
    inputs = [{"file_name": "/images/img0.jpg", "image_id": 0}]
    perfect = [s for s in gt_segments if not s["iscrowd"]]
    gt_no_crowd = np.where(gt == 30, 0, gt)

    evaluator = COCOPanopticEvaluator(name, output_dir=str(tmp_path / "out"))
    evaluator.reset()
    evaluator.process(inputs, [{"panoptic_seg": (torch.from_numpy(gt_no_crowd).int(), _to_contiguous(perfect))}])
    res = evaluator.evaluate()["panoptic_seg"]
    assert set(res) == {"PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"}
    assert res["PQ"] == pytest.approx(100.0) and res["PQ_st"] == pytest.approx(100.0)
    assert (tmp_path / "out" / "predictions.json").exists()

    pred, pred_segments = _pred()
    evaluator.reset()
    evaluator.process(inputs, [{"panoptic_seg": (torch.from_numpy(pred).int(), _to_contiguous(pred_segments))}])
    res = evaluator.evaluate()["panoptic_seg"]
    assert res["PQ"] == pytest.approx(100 * 1.6 / 3)
    assert res["RQ"] == pytest.approx(100 * 2 / 3)
    assert res["PQ_th"] == pytest.approx(30.0)
    assert res["RQ_th"] == pytest.approx(50.0)


def test_evaluator_label_divisor_format(tmp_path):
    # segments_info None: ids are contiguous category * 1000 + instance, -1 VOID.
    gt, gt_segments = _gt()
    name = _register_panoptic(tmp_path, [("img0", gt, gt_segments)])
    panoptic = np.full(gt.shape, -1, dtype=np.int64)
    panoptic[1] = 0 * 1000 + 1  # person (thing 0), instance 1
    panoptic[2, :5] = 1 * 1000 + 1  # car (thing 1)
    panoptic[3] = 2 * 1000  # sky (stuff 2)
    evaluator = COCOPanopticEvaluator(name)
    evaluator.reset()
    evaluator.process([{"file_name": "img0.jpg", "image_id": 0}], [{"panoptic_seg": (torch.from_numpy(panoptic), None)}])
    res = evaluator.evaluate()["panoptic_seg"]
    assert res["PQ"] == pytest.approx(100.0)


def test_evaluator_rejects_unknown_category(tmp_path):
    gt, gt_segments = _gt()
    name = _register_panoptic(tmp_path, [("img0", gt, gt_segments)])
    evaluator = COCOPanopticEvaluator(name)
    evaluator.reset()
    bad = [{"id": 10, "category_id": 7, "isthing": True}]
    with pytest.raises(KeyError, match="not a contiguous thing id"):
        evaluator.process([{"file_name": "img0.jpg", "image_id": 0}],
                          [{"panoptic_seg": (torch.from_numpy(np.where(gt == 10, 10, 0)), bad)}])


class _TaskDeclaringModel(torch.nn.Module):
    """A meta-architecture that declares the outputs listed in the config's ``TASKS``."""

    @classmethod
    def output_tasks(cls, cfg):
        return cfg.TASKS


if "_TaskDeclaringModel" not in META_ARCH_REGISTRY:
    META_ARCH_REGISTRY.register(_TaskDeclaringModel)


def _cfg(tmp_path, *tasks, arch="_TaskDeclaringModel"):
    return CfgNode({"OUTPUT_DIR": str(tmp_path), "MODEL": {"META_ARCHITECTURE": arch}, "TASKS": list(tasks)})


def test_registry_chooses_from_the_model_outputs_and_metadata(tmp_path, monkeypatch):
    from segcore.evaluation import panoptic_evaluation

    class _InstanceEvaluator(DatasetEvaluator):
        def __init__(self, dataset_name, output_folder):
            self.dataset_name = dataset_name

    semantic, _, always = panoptic_evaluation.PANOPTIC_EVALUATOR_TYPES["coco_panoptic_seg"]
    monkeypatch.setitem(panoptic_evaluation.PANOPTIC_EVALUATOR_TYPES, "coco_panoptic_seg",
                        (semantic, _InstanceEvaluator, always))
    gt, gt_segments = _gt()
    name = _register_panoptic(tmp_path, [("img0", gt, gt_segments)])
    # a model that returns semantic and panoptic outputs (Mask2Former's switches)
    built = build_evaluator(_cfg(tmp_path, "sem_seg", "panoptic_seg"), name)
    assert [type(e) for e in built._evaluators] == [SemSegEvaluator, COCOPanopticEvaluator]
    # instances too: the type's instance evaluator is added
    built = build_evaluator(_cfg(tmp_path, "panoptic_seg", "instances"), name)
    assert [type(e) for e in built._evaluators] == [COCOPanopticEvaluator, _InstanceEvaluator]
    # panoptic only; and a model that declares nothing (or an unknown one) counts as panoptic only
    assert type(build_evaluator(_cfg(tmp_path, "panoptic_seg"), name)) is COCOPanopticEvaluator
    assert type(build_evaluator(_cfg(tmp_path, arch="NotARegisteredModel"), name)) is COCOPanopticEvaluator
    # ADE20K panoptic is always evaluated for semantics too.
    name = _register_panoptic(tmp_path, [("img0", gt, gt_segments)], "ade20k_panoptic_seg")
    built = build_evaluator(_cfg(tmp_path, "panoptic_seg"), name)
    assert [type(e) for e in built._evaluators] == [SemSegEvaluator, COCOPanopticEvaluator]
    # A model with no output this dataset can evaluate: no evaluator is a clear error.
    name = _register_panoptic(tmp_path, [("img0", gt, gt_segments)], "mapillary_vistas_panoptic_seg")
    with pytest.raises(NotImplementedError, match="current config"):
        build_evaluator(_cfg(tmp_path), name)
