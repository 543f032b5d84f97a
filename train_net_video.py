#!/usr/bin/env python
"""The original Mask2Former's video entry point (``train_net_video.py``), kept so that its command
lines run unchanged: it is ``train_net.py``, which trains and evaluates every family, the video
models included (the meta-architecture brings its clip mapper, the dataset its YouTube-VIS
evaluator)::

    python train_net_video.py --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml --num-gpus 8
    python train_net_video.py --config-file CONFIG --eval-only MODEL.WEIGHTS model_final_34e0de.pkl
"""
from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from segcore.engine import run_cli  # noqa: E402
from train_net import cli, main, setup  # noqa: E402,F401  (the same command line)

if __name__ == "__main__":
    run_cli(cli, prog="train_net_video.py")
