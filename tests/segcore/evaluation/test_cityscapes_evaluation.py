"""Cityscapes evaluators with cityscapesscripts on a tiny gtFine folder (skipped without the package)."""
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("cityscapesscripts")

from segcore.config import CfgNode  # noqa: E402
from segcore.data import MetadataCatalog  # noqa: E402
from segcore.evaluation import (  # noqa: E402
    CityscapesInstanceEvaluator,
    CityscapesSemSegEvaluator,
    build_evaluator,
)
from segcore.structures import Instances  # noqa: E402

H, W = 20, 20
STEM = "aachen_000000_000019"
# Label ids: road 7 (trainId 0), sky 23 (trainId 10), car 26 (trainId 13).
TRAIN_ID_OF = {7: 0, 23: 10, 26: 13}
THING_CLASSES = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]


def _dataset(tmp_path):
    labels = np.full((H, W), 7, dtype=np.uint8)  # rows 0-9 road
    labels[10:] = 23  # rows 10-19 sky
    labels[10:20, 0:12] = 26  # car: 10 x 12 = 120 px (>= the 100 px minimum region)
    instance_ids = labels.astype(np.uint16)  # 16-bit PNG, as the release
    instance_ids[labels == 26] = 26000
    city = tmp_path / "gtFine" / "val" / "aachen"
    city.mkdir(parents=True)
    Image.fromarray(labels).save(city / f"{STEM}_gtFine_labelIds.png")
    Image.fromarray(instance_ids).save(city / f"{STEM}_gtFine_instanceIds.png")
    name = f"test_cityscapes_{uuid.uuid4().hex[:6]}"
    MetadataCatalog.get(name).set(gt_dir=str(tmp_path / "gtFine" / "val"), thing_classes=THING_CLASSES,
                                  evaluator_type="cityscapes_sem_seg")
    return name, labels


def _scores(label_ids):
    scores = torch.zeros(19, H, W)
    for label_id, train_id in TRAIN_ID_OF.items():
        scores[train_id][torch.from_numpy(label_ids == label_id)] = 1.0
    return scores


INPUTS = [{"file_name": f"/x/leftImg8bit/val/aachen/{STEM}_leftImg8bit.png", "image_id": STEM}]


def test_semantic_perfect_and_degraded(tmp_path):
    name, labels = _dataset(tmp_path)
    evaluator = build_evaluator(CfgNode({"OUTPUT_DIR": str(tmp_path)}), name)
    assert isinstance(evaluator, CityscapesSemSegEvaluator)
    evaluator.reset()
    evaluator.process(INPUTS, [{"sem_seg": _scores(labels)}])
    res = evaluator.evaluate()["sem_seg"]
    assert res["IoU"] == pytest.approx(100.0) and res["iIoU"] == pytest.approx(100.0)

    # Degraded: row 9 (20 px of road) predicted as sky. road IoU 180/200 = 0.9; sky (80 px gt:
    # rows 10-19, cols 12-19) IoU 80/100 = 0.8; car 1. Mean over the three classes: 0.9.
    pred = labels.copy()
    pred[9] = 23
    evaluator.reset()
    evaluator.process(INPUTS, [{"sem_seg": _scores(pred)}])
    res = evaluator.evaluate()["sem_seg"]
    assert res["IoU"] == pytest.approx(100 * (0.9 + 0.8 + 1.0) / 3, abs=1e-3)


def test_instance_perfect(tmp_path):
    name, labels = _dataset(tmp_path)
    evaluator = CityscapesInstanceEvaluator(name)
    evaluator.reset()
    inst = Instances((H, W))
    inst.pred_masks = torch.from_numpy(labels == 26)[None]
    inst.scores = torch.tensor([0.9])
    inst.pred_classes = torch.tensor([2])  # car
    evaluator.process(INPUTS, [{"instances": inst}])
    res = evaluator.evaluate()["segm"]
    assert res["AP"] == pytest.approx(100.0) and res["AP50"] == pytest.approx(100.0)
