"""What the end-to-end tests share: the tiny MaskFormer quickstart settings and the command-line scripts.

The generated quickstart dataset is the ``quickstart_root`` fixture of ``tests/conftest.py``.
"""
import importlib.util
import json
import os
from types import ModuleType
from typing import List

from tests.paths import CONFIGS, REPO_ROOT

#: the MaskFormer quickstart config (ResNet-18, ADE20K layout of the generated dataset)
MASKFORMER_QUICKSTART = os.path.join(CONFIGS, "quickstart", "maskformer_R18_quickstart.yaml")

#: overrides that make the quickstart model tiny and fast (64-pixel images, 8 queries, 2 decoder layers)
TINY_MASKFORMER = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
                   "MODEL.MASK_FORMER.HIDDEN_DIM", "32", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "8",
                   "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.DEC_LAYERS", "2",
                   "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.CROP.SIZE", "(64, 64)", "INPUT.SIZE_DIVISIBILITY", "64",
                   "INPUT.MIN_SIZE_TEST", "64", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
                   "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "0", "MODEL.DEVICE", "cpu"]


def load_script(name: str, relative_path: str) -> ModuleType:
    """Import a repository script (``train_net.py``, ``demo/demo.py``, ``tools/*.py``) as a module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_metrics(out_dir: str) -> List[dict]:
    """The records of ``<out_dir>/metrics.json``, one per line."""
    with open(os.path.join(out_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]
