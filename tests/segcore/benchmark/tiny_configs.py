"""Tiny quickstart configs for the benchmark tests (one timed call each: speed is never asserted)."""
import os

from segcore.benchmark import BenchmarkSettings, benchmark_config
from tests.paths import CONFIGS

#: overrides that make the quickstart models tiny
TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "10", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "MODEL.MASK_FORMER.NHEADS", "4", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1",
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS", "4", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "256",
        "DATALOADER.NUM_WORKERS", "0"]
M2F = os.path.join(CONFIGS, "quickstart", "mask2former_R18_quickstart.yaml")
M2F_PANOPTIC = os.path.join(CONFIGS, "quickstart", "mask2former_panoptic_R18_quickstart.yaml")
MASKFORMER = os.path.join(CONFIGS, "quickstart", "maskformer_R18_quickstart.yaml")


def tiny(config_file: str, *, train: bool = False, opts=(), **settings):
    """``(cfg, settings)``: the tiny config at one warm-up and one timed call (``settings`` override)."""
    settings = BenchmarkSettings(**{"iters": 1, "warmup": 1, **settings})
    return benchmark_config(config_file, settings, train=train, opts=TINY + list(opts)), settings
