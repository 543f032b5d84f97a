"""SemSegEvaluator on hand-built predictions; the evaluator registry."""
import json
import math
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from segcore.config import get_cfg
from segcore.evaluation import EVALUATOR_REGISTRY, SemSegEvaluator, build_evaluator, inference_on_dataset

data = pytest.importorskip("segcore.data")

# 2 x 4 image, 3 classes (a, b, c); 255 = ignore. Class c is absent from the ground truth.
GT = np.array([[0, 0, 1, 1], [0, 255, 1, 0]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1], [0, 0, 2, 0]])
# By hand (ignored pixel (1,1) left out):
#   class a: gt 4 px, predicted 3 px, TP 3 -> IoU 3/4,  ACC 3/4
#   class b: gt 3 px, predicted 3 px, TP 2 -> IoU 2/4,  ACC 2/3
#   class c: no gt -> IoU and ACC NaN, not in the means
#   mIoU = (0.75 + 0.5) / 2; mACC = (0.75 + 2/3) / 2; pACC = 5/7; fwIoU = 4/7 * 0.75 + 3/7 * 0.5


def _scores(pred, k=3):
    """One-hot-like float scores (K, H, W) whose argmax is ``pred``."""
    s = torch.full((k, *pred.shape), 0.1)
    s.scatter_(0, torch.as_tensor(pred)[None], 0.9)
    return s


def _register(tmp_path, gts, evaluator_type="sem_seg", classes=("a", "b", "c")):
    name = f"toy_sem_seg_{uuid.uuid4().hex[:8]}"
    dicts = []
    for i, gt in enumerate(gts):
        gt_file = tmp_path / f"gt_{i}.png"
        Image.fromarray(gt).save(gt_file)
        dicts.append({"file_name": str(tmp_path / f"img_{i}.jpg"), "sem_seg_file_name": str(gt_file),
                      "height": gt.shape[0], "width": gt.shape[1]})
    data.DatasetCatalog.register(name, lambda: dicts)
    data.MetadataCatalog.get(name).set(stuff_classes=list(classes), ignore_label=255, evaluator_type=evaluator_type)
    return name, dicts


def test_metrics_by_hand(tmp_path):
    all_ignore = np.full((2, 4), 255, dtype=np.uint8)
    name, dicts = _register(tmp_path, [GT, all_ignore])
    ev = SemSegEvaluator(name, distributed=False)
    ev.reset()
    # one input without sem_seg_file_name (looked up in the DatasetCatalog), one with it
    ev.process([{"file_name": dicts[0]["file_name"]}], [{"sem_seg": _scores(PRED)}])
    ev.process([dicts[1]], [{"sem_seg": _scores(np.zeros((2, 4), dtype=int))}])  # all ignored: no effect
    res = ev.evaluate()["sem_seg"]

    assert res["IoU-a"] == pytest.approx(75.0)
    assert res["IoU-b"] == pytest.approx(50.0)
    assert math.isnan(res["IoU-c"]) and math.isnan(res["ACC-c"])
    assert res["ACC-a"] == pytest.approx(75.0)
    assert res["ACC-b"] == pytest.approx(200 / 3)
    assert res["mIoU"] == pytest.approx(62.5)
    assert res["mACC"] == pytest.approx(50 * (0.75 + 2 / 3))
    assert res["pACC"] == pytest.approx(500 / 7)
    assert res["fwIoU"] == pytest.approx(100 * (4 / 7 * 0.75 + 3 / 7 * 0.5))
    assert list(res)[:2] == ["mIoU", "fwIoU"]

    # reset() starts over; a perfect prediction gives 100
    ev.reset()
    ev.process([dicts[0]], [{"sem_seg": _scores(np.where(GT == 255, 2, GT).astype(int))}])
    res = ev.evaluate()["sem_seg"]
    assert res["mIoU"] == pytest.approx(100.0) and res["pACC"] == pytest.approx(100.0)


def test_size_and_class_errors(tmp_path):
    name, dicts = _register(tmp_path, [GT])
    ev = SemSegEvaluator(name, distributed=False)
    with pytest.raises(ValueError, match=r"2x5 \(HxW\).*gt_0.png is 2x4"):
        ev.process([dicts[0]], [{"sem_seg": _scores(np.zeros((2, 5), dtype=int))}])
    with pytest.raises(ValueError, match=r"\(4, 2, 4\).*3 classes"):
        ev.process([dicts[0]], [{"sem_seg": torch.zeros(4, 2, 4)}])
    with pytest.raises(ValueError, match="num_classes=5"):
        SemSegEvaluator(name, distributed=False, num_classes=5)

    bad = GT.copy()
    bad[0, 0] = 7
    (tmp_path / "bad").mkdir()
    name2, dicts2 = _register(tmp_path / "bad", [bad])
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        SemSegEvaluator(name2, distributed=False).process([dicts2[0]], [{"sem_seg": _scores(PRED)}])


def test_json_output_and_inference_loop(tmp_path):
    name, dicts = _register(tmp_path, [GT])
    out = tmp_path / "inference"
    ev = SemSegEvaluator(name, distributed=False, output_dir=str(out))

    class _Model(torch.nn.Module):
        def forward(self, batch):
            assert not self.training and not torch.is_grad_enabled()
            return [{"sem_seg": _scores(PRED)} for _ in batch]

    model = _Model().train()
    res = inference_on_dataset(model, [[dicts[0]]], ev)
    assert model.training  # mode restored
    assert res["sem_seg"]["mIoU"] == pytest.approx(62.5)
    preds = json.loads((out / "sem_seg_predictions.json").read_text())
    assert sorted(p["category_id"] for p in preds) == [0, 1, 2]
    assert all(p["file_name"] == dicts[0]["file_name"] for p in preds)
    saved = torch.load(out / "sem_seg_evaluation.pth", weights_only=True)
    assert saved["mIoU"] == pytest.approx(62.5)


def test_registry_builds_by_evaluator_type(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    name, _ = _register(tmp_path, [GT])
    ev = build_evaluator(cfg, name)
    assert isinstance(ev, SemSegEvaluator)
    assert "sem_seg" in EVALUATOR_REGISTRY

    other, _ = _register(tmp_path, [GT], evaluator_type="toy_unknown_type")
    with pytest.raises(NotImplementedError, match=f"'{other}'.*'toy_unknown_type'"):
        build_evaluator(cfg, other)
