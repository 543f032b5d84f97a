#!/usr/bin/env python
"""The quickstart: make the bundled dataset, train a model on it from scratch, evaluate, demo.

Runs on a CPU in minutes::

    python tools/quickstart.py                                      # MaskFormer, semantic (mIoU)
    python tools/quickstart.py --num-gpus 2                         # two training processes
    python tools/quickstart.py --task panoptic                      # panoptic segmentation (PQ, SQ, RQ)
    python tools/quickstart.py --model mask2former --task instance  # Mask2Former, instance (mask AP)
    python tools/quickstart.py --model semask                       # SeMask-MaskFormer, semantic
    python tools/quickstart.py --model mask2former-video            # Mask2Former for videos (video AP)
    python tools/quickstart.py --all --update-readme                # every quickstart; README's table

``--model`` is ``maskformer`` or ``mask2former`` (ResNet-18), ``semask`` (SeMask-MaskFormer: a small
SeMask Swin), ``maskformer-swin`` (the same model without the Semantic Layers and the semantic-prior
loss, its baseline, trained with the same budget), ``semask-fpn`` (SeMask-FPN) or ``mask2former-video``
(Mask2Former for video instance segmentation, on the generated YouTube-VIS-format videos); ``--task`` is
``semantic``, ``panoptic`` (MaskFormer, Mask2Former), ``instance`` (Mask2Former) or ``video``
(mask2former-video, its only task and its default); see ``segcore.quickstart.runs.QUICKSTARTS``. Steps
(each is the project's normal command line, run in-process):
1. ``python -m segcore.quickstart.generate --root $DETECTRON2_DATASETS`` (skipped if present; ``--videos``
   for the video quickstart);
2. ``train_net.py --config-file configs/quickstart/<the model's and task's config>`` (trains, then
   evaluates on the validation split);
3. ``demo/demo.py`` on validation images, pictures written to ``<OUTPUT_DIR>/demo`` (the video
   quickstart: ``demo_video/demo.py`` on a validation video, its frames and ``visualization.mp4``).
It ends with a summary: the metrics, for semantic and panoptic the mIoU of predicting the most
frequent class everywhere, the time of each step, and where the pictures are.

``--all`` runs every model x task quickstart, each in a fresh output folder under
``output/quickstart_all/``; ``--update-readme`` then rewrites the results table of README.md (the
lines between ``README_BEGIN`` and ``README_END`` of ``segcore.quickstart.runs``) from those runs, so the figures the
README states are the ones this command measured. Run it whenever training, data or inference
code changes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "demo"))

from segcore.engine import run_cli  # noqa: E402
from segcore.quickstart.runs import (ALL_OUTPUT_DIR, QUICKSTARTS, machine_description, quickstart_config,  # noqa: E402
                                     render_results_table, run_quickstart, update_readme)


def _commands() -> dict:
    """The project's command lines that a quickstart runs, as functions of their arguments."""
    import importlib.util

    import demo
    import train_net

    # demo_video/demo.py by path: its module name is the image demo's
    spec = importlib.util.spec_from_file_location("demo_video_demo", os.path.join(ROOT, "demo_video", "demo.py"))
    demo_video = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_video)
    return {"train": train_net.cli, "draw": demo.main, "draw_video": demo_video.main}


def main(argv=None):
    """Run the quickstart(s) of the command line; returns the summary (a list of them with ``--all``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted({m for m, _ in QUICKSTARTS}), default="maskformer")
    parser.add_argument("--task", choices=sorted({t for _, t in QUICKSTARTS}), default=None,
                        help="semantic (mIoU), panoptic (PQ, SQ, RQ; also mIoU; maskformer, mask2former), "
                             "instance (mask AP; mask2former) or video (video AP; mask2former-video); default: "
                             "semantic, or the model's only task")
    parser.add_argument("--all", action="store_true", help=f"run every model x task quickstart under {ALL_OUTPUT_DIR}/")
    parser.add_argument("--update-readme", nargs="?", const=os.path.join(ROOT, "README.md"), default=None,
                        metavar="README", help="with --all: rewrite the results table of README.md (or this file)")
    parser.add_argument("--config-file", default=None, help="default: the model's and task's quickstart config")
    parser.add_argument("--datasets-root", default=os.getenv("DETECTRON2_DATASETS", "datasets"))
    parser.add_argument("--output-dir", default=None, help="default: the config's output folder under output/")
    parser.add_argument("--num-gpus", type=int, default=1, help="training processes (CPU processes without CUDA)")
    parser.add_argument("--demo-images", type=int, default=8, help="validation images drawn by the demo")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE config overrides")
    args = parser.parse_args(argv)
    commands = _commands()
    if args.update_readme and not args.all:
        parser.error("--update-readme rewrites the table of every quickstart: use it with --all")
    if args.all:
        if args.config_file or args.output_dir:
            parser.error("--all runs the quickstart configs into their own folders: drop --config-file / --output-dir")
        summaries = []
        for model, task in QUICKSTARTS:
            config, _ = quickstart_config(model, task)
            output_dir = os.path.join(ALL_OUTPUT_DIR, f"{model}_{task}")
            shutil.rmtree(output_dir, ignore_errors=True)  # a fresh folder: nothing resumed, nothing reused
            summaries.append(run_quickstart(model, task, config_file=config, output_dir=output_dir, **commands,
                                            datasets_root=args.datasets_root, num_gpus=args.num_gpus,
                                            demo_images=args.demo_images, opts=args.opts))
        with open(os.path.join(ALL_OUTPUT_DIR, "summary.json"), "w") as f:
            json.dump(summaries, f, indent=2)
        if args.update_readme:
            update_readme(args.update_readme, render_results_table(summaries, machine_description()))
            print(f"Updated the quickstart results table of {args.update_readme}")
        return summaries
    if args.task is None:
        tasks = sorted(t for m, t in QUICKSTARTS if m == args.model)
        args.task = "semantic" if "semantic" in tasks else tasks[0]
    if (args.model, args.task) not in QUICKSTARTS:
        available = sorted(t for m, t in QUICKSTARTS if m == args.model)
        parser.error(f"--model {args.model} has no --task {args.task} quickstart; choose one of {available}")
    config, output_dir = quickstart_config(args.model, args.task)
    return run_quickstart(args.model, args.task, config_file=args.config_file or config, **commands,
                          output_dir=args.output_dir or output_dir, datasets_root=args.datasets_root,
                          num_gpus=args.num_gpus, demo_images=args.demo_images, opts=args.opts)


if __name__ == "__main__":
    run_cli(main, prog="quickstart.py")
