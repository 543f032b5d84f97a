"""End to end on generated data in the real ADE20K layout: train_net.py trains a tiny SeMask model
(the semantic mapper's ``sem_seg`` reaching the semantic-prior loss), saves it and evaluates it."""
import os

import torch

from tests.e2e_utils import MASKFORMER_QUICKSTART, TINY_MASKFORMER, load_script, read_metrics

#: the quickstart MaskFormer turned into a tiny SeMask-MaskFormer (SeMask Swin, BranchMaskFormerHead)
SEMASK = ["MODEL.META_ARCHITECTURE", "SeMaskMaskFormer", "MODEL.BACKBONE.NAME", "D2SeMaskSwinTransformer",
          "MODEL.SEM_SEG_HEAD.NAME", "BranchMaskFormerHead", "MODEL.SWIN.EMBED_DIM", "16",
          "MODEL.SWIN.DEPTHS", "[2, 2, 2, 2]", "MODEL.SWIN.NUM_HEADS", "[1, 2, 2, 4]", "MODEL.SWIN.WINDOW_SIZE", "4",
          "MODEL.SWIN.SEM_WINDOW_SIZE", "4", "MODEL.SWIN.DROP_PATH_RATE", "0.0"]


def test_train_and_evaluate(quickstart_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    train_net = load_script("train_net", "train_net.py")
    out = str(tmp_path / "out")
    results = train_net.cli(["--config-file", MASKFORMER_QUICKSTART, "OUTPUT_DIR", out, *TINY_MASKFORMER, *SEMASK,
                             "SOLVER.MAX_ITER", "2"])
    assert 0.0 <= results["sem_seg"]["mIoU"] <= 100.0
    logged = [m for m in read_metrics(out) if "total_loss" in m]
    assert logged and all(m["loss_cate"] > 0 for m in logged)
    assert not any(k.startswith("loss_cate_") for k in logged[-1])
    state = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]
    assert "backbone.layers.3.semantic_layer.class_injection.0.gamma" in state
