#!/usr/bin/env python
"""Train and evaluate any model family of this project (MaskFormer, and later Mask2Former, SeMask).

Usage (as the original projects' train_net.py):

    python train_net.py --config-file configs/ade20k-150/maskformer_R50_bs16_160k.yaml --num-gpus 8
    python train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS /path/to/model_final.pth
    python train_net.py --config-file CONFIG --resume            # continue from OUTPUT_DIR/last_checkpoint
    python train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS W TEST.AUG.ENABLED True  # + multi-scale/flip

On a machine without CUDA, ``--num-gpus N`` starts N CPU processes (gloo backend).
"""
from __future__ import annotations

import sys

from segcore.engine import (DefaultTrainer, default_argument_parser, default_setup, launch, load_inference_weights,
                            run_cli, setup_cfg)
from segcore.evaluation import verify_results
from segcore.utils import comm


def setup(args):
    """Build the frozen config: defaults + every installed family's keys + file + overrides."""
    cfg = setup_cfg(args.config_file, args.opts)
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = DefaultTrainer.build_model(cfg)
        # every weight must come from MODEL.WEIGHTS (or, with --resume, the last checkpoint)
        load_inference_weights(model, cfg, resume=args.resume, save_dir=cfg.OUTPUT_DIR)
        results = DefaultTrainer.test(cfg, model)
        if cfg.TEST.AUG.ENABLED:  # test-time augmentation: results under "<task>_TTA" next to the plain ones
            results.update(DefaultTrainer.test_with_TTA(cfg, model))
        if comm.is_main_process():
            verify_results(cfg, results)
        return results
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def cli(argv=None):
    args = default_argument_parser().parse_args(argv)
    if not args.config_file:
        sys.exit("train_net.py: --config-file is required")
    return launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                  dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    run_cli(cli, prog="train_net.py")  # a user's mistake (config, weights, dataset, OUTPUT_DIR): one message
