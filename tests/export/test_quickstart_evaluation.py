"""A model evaluated through its exported files gives the mIoU that PyTorch gives (the quickstart's
evaluation on a generated ADE20K-layout dataset, with a tiny Mask2Former)."""
import pytest
import torch

from segcore.data import DatasetCatalog
from segcore.data.detection_utils import read_image
from segcore.engine import DefaultPredictor
from segcore.evaluation import SemSegEvaluator
from segcore.export import ExportedPredictor


def _miou(predict, dataset):
    evaluator = SemSegEvaluator("quickstart_sem_seg_val", distributed=False)
    evaluator.reset()
    for record in dataset:
        image = read_image(record["file_name"], format="BGR")
        evaluator.process([record], [predict(image)])
    return evaluator.evaluate()["sem_seg"]["mIoU"]


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_the_exported_model_evaluates_to_the_same_miou(tiny_exports, quickstart_root, monkeypatch, fmt):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    dataset = DatasetCatalog.get("quickstart_sem_seg_val")
    assert len(dataset) >= 3
    cfg = tiny_exports.cfg.clone()
    cfg.defrost()
    cfg.MODEL.ALLOW_PARTIAL_WEIGHTS = True
    predictor = DefaultPredictor(cfg)
    predictor.model.load_state_dict(tiny_exports.model.state_dict())
    exported = ExportedPredictor(tiny_exports.onnx_dir) if fmt == "onnx" else tiny_exports.pt2_predictor
    with torch.no_grad():
        expected = _miou(predictor, dataset)
    assert abs(_miou(exported, dataset) - expected) <= 0.1
