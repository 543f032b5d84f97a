"""End to end on generated data in the real ADE20K layout: train_net.py trains the SeMask-FPN
quickstart model (made tiny) a few iterations, with both losses, saves it and evaluates it."""
import os

import torch

from tests.e2e_utils import load_script, read_metrics
from tests.paths import CONFIGS

QUICKSTART = os.path.join(CONFIGS, "quickstart", "semask_fpn_swin_quickstart.yaml")
TINY = ["MODEL.SWIN.EMBED_DIM", "16", "MODEL.SWIN.NUM_HEADS", "[1, 2, 2, 4]", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "16",
        "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.CROP.SIZE", "(64, 64)", "INPUT.SIZE_DIVISIBILITY", "64",
        "INPUT.MIN_SIZE_TEST", "64", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "1",
        "SOLVER.CHECKPOINT_PERIOD", "3", "DATALOADER.NUM_WORKERS", "0", "TEST.EVAL_PERIOD", "0", "MODEL.DEVICE", "cpu"]


def test_train_and_evaluate(quickstart_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    train_net = load_script("train_net", "train_net.py")
    out = str(tmp_path / "out")
    results = train_net.cli(["--config-file", QUICKSTART, "OUTPUT_DIR", out, *TINY])
    assert 0.0 <= results["sem_seg"]["mIoU"] <= 100.0
    logged = [m for m in read_metrics(out) if "total_loss" in m]
    assert logged and all(m["loss_cate"] > 0 and m["loss_sem_seg"] > 0 for m in logged)
    assert set(logged[-1]) >= {"loss_sem_seg", "loss_cate", "total_loss"}
    state = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]
    assert "backbone.layers.3.semantic_layer.class_injection.0.mlp_cls_q.weight" in state
    assert state["sem_seg_head.predictor.weight"].shape[0] == 10
    assert "sem_seg_head.res5.4.norm.running_mean" in state
