"""The demo at TEST.PRECISION bfloat16: predictions come from a bfloat16 DefaultPredictor and every
output draws (reduced-precision instance fields are drawn as float32)."""
import os
import sys

import numpy as np
import torch

from segcore.engine import setup_cfg
from segcore.structures import Boxes, Instances
from tests.paths import CONFIGS, DEMO

if DEMO not in sys.path:
    sys.path.insert(0, DEMO)

from predictor import VisualizationDemo, float32_fields  # noqa: E402  (demo/predictor.py)

TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "10", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "MODEL.MASK_FORMER.NHEADS", "4", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "INPUT.MIN_SIZE_TEST", "0",
        "MODEL.WEIGHTS", "", "MODEL.ALLOW_PARTIAL_WEIGHTS", "True", "MODEL.DEVICE", "cpu", "MODEL.MASK_FORMER.TEST.INSTANCE_ON", "True",
        "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0"]


def test_demo_draws_every_output_in_bfloat16():
    cfg = setup_cfg(os.path.join(CONFIGS, "quickstart", "mask2former_panoptic_R18_quickstart.yaml"),
                    TINY + ["TEST.PRECISION", "bfloat16"])
    demo = VisualizationDemo(cfg, confidence_threshold=0.0)
    assert demo.predictor.precision == torch.bfloat16
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    predictions, _ = demo.run_on_image(image)
    drawings = demo.visualize_all(image, predictions)
    assert set(drawings) == {"panoptic_seg", "instances", "sem_seg"}
    assert all(d.get_image().shape == (64, 80, 3) for d in drawings.values())


def test_float32_fields_converts_reduced_precision_fields_only():
    inst = Instances((4, 4))
    inst.scores = torch.tensor([0.5, 0.25], dtype=torch.bfloat16)
    inst.pred_boxes = Boxes(torch.zeros(2, 4, dtype=torch.float16))
    inst.pred_classes = torch.tensor([1, 2])
    inst.pred_masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    out = float32_fields(inst)
    assert out.scores.dtype == torch.float32 and out.scores.tolist() == [0.5, 0.25]
    assert out.pred_boxes.tensor.dtype == torch.float32
    assert out.pred_classes.dtype == torch.int64 and out.pred_masks.dtype == torch.bool
