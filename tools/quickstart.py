#!/usr/bin/env python
"""The quickstart: make the bundled dataset, train a model on it from scratch, evaluate, demo.

Runs on a CPU in minutes::

    python tools/quickstart.py                                      # MaskFormer, semantic (mIoU)
    python tools/quickstart.py --num-gpus 2                         # two training processes
    python tools/quickstart.py --task panoptic                      # panoptic segmentation (PQ, SQ, RQ)
    python tools/quickstart.py --model mask2former --task instance  # Mask2Former, instance (mask AP)

``--model`` is ``maskformer`` or ``mask2former``; ``--task`` is ``semantic``, ``panoptic`` or (for
Mask2Former) ``instance``. Steps (each is the project's normal command line, run in-process):
1. ``python -m segcore.data.quickstart.generate --root $DETECTRON2_DATASETS`` (skipped if present);
2. ``train_net.py --config-file configs/quickstart/<model>_<task>_R18_quickstart.yaml`` (trains,
   then evaluates on the validation split);
3. ``demo/demo.py`` on validation images, pictures written to ``<OUTPUT_DIR>/demo``.
It ends with a summary: the metrics, for semantic and panoptic the mIoU of predicting the most
frequent class everywhere, the time of each step, and where the pictures are.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "demo"))

_CONFIGS = os.path.join(ROOT, "configs", "quickstart")
#: (--model, --task) -> (config, default output folder)
QUICKSTARTS = {
    ("maskformer", "semantic"): (os.path.join(_CONFIGS, "maskformer_R18_quickstart.yaml"), "output/quickstart"),
    ("maskformer", "panoptic"): (os.path.join(_CONFIGS, "maskformer_panoptic_R18_quickstart.yaml"),
                                 "output/quickstart_panoptic"),
    ("mask2former", "semantic"): (os.path.join(_CONFIGS, "mask2former_R18_quickstart.yaml"),
                                  "output/quickstart_mask2former"),
    ("mask2former", "panoptic"): (os.path.join(_CONFIGS, "mask2former_panoptic_R18_quickstart.yaml"),
                                  "output/quickstart_mask2former_panoptic"),
    ("mask2former", "instance"): (os.path.join(_CONFIGS, "mask2former_instance_R18_quickstart.yaml"),
                                  "output/quickstart_mask2former_instance"),
}
#: metrics.json keys reported in the summary, per evaluation
SUMMARY_METRICS = {"sem_seg": ("mIoU", "pACC"), "panoptic_seg": ("PQ", "SQ", "RQ", "PQ_th", "PQ_st"),
                   "segm": ("AP", "AP50", "AP75")}


def majority_class_miou(gt_files, num_classes: int, ignore_label: int = 255) -> float:
    """mIoU (percent) over ``gt_files`` of predicting, everywhere, the class most frequent in them."""
    counts = np.zeros(num_classes, dtype=np.int64)
    gts = []
    for f in gt_files:
        gt = np.asarray(Image.open(f))
        gts.append(gt)
        valid = gt != ignore_label
        counts += np.bincount(gt[valid].ravel(), minlength=num_classes)[:num_classes]
    majority = int(counts.argmax())
    present = counts > 0
    # IoU of the majority class = its pixels / all valid pixels; every other present class: 0
    iou_majority = counts[majority] / counts.sum()
    return 100.0 * iou_majority / present.sum()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted({m for m, _ in QUICKSTARTS}), default="maskformer")
    parser.add_argument("--task", choices=sorted({t for _, t in QUICKSTARTS}), default="semantic",
                        help="semantic (mIoU), panoptic (PQ, SQ, RQ; also mIoU) or instance (mask AP; mask2former)")
    parser.add_argument("--config-file", default=None, help="default: the model's and task's quickstart config")
    parser.add_argument("--datasets-root", default=os.getenv("DETECTRON2_DATASETS", "datasets"))
    parser.add_argument("--output-dir", default=None, help="default: the config's output folder under output/")
    parser.add_argument("--num-gpus", type=int, default=1, help="training processes (CPU processes without CUDA)")
    parser.add_argument("--demo-images", type=int, default=8, help="validation images drawn by the demo")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE config overrides")
    args = parser.parse_args(argv)
    if (args.model, args.task) not in QUICKSTARTS:
        available = sorted(t for m, t in QUICKSTARTS if m == args.model)
        parser.error(f"--model {args.model} has no --task {args.task} quickstart; choose one of {available}")
    config, output_dir = QUICKSTARTS[(args.model, args.task)]
    args.config_file = args.config_file or config
    args.output_dir = args.output_dir or output_dir
    os.environ["DETECTRON2_DATASETS"] = os.path.abspath(args.datasets_root)

    from segcore.data.quickstart import generate_quickstart

    times = {}
    t0 = time.perf_counter()
    info = generate_quickstart(args.datasets_root)
    times["generate"] = time.perf_counter() - t0

    import train_net

    overrides = ["OUTPUT_DIR", args.output_dir, *args.opts]
    t0 = time.perf_counter()
    train_net.cli(["--config-file", args.config_file, "--num-gpus", str(args.num_gpus), *overrides])
    times["train+eval"] = time.perf_counter() - t0

    with open(os.path.join(args.output_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    result = {}
    for record in records:  # the last value of every reported metric
        for task, names in SUMMARY_METRICS.items():
            result.update({k: record[f"{task}/{k}"] for k in names if f"{task}/{k}" in record})
    if not result:
        raise RuntimeError(f"No evaluation result found in {args.output_dir}/metrics.json")

    import demo as demo_cli

    val_images = sorted(glob.glob(os.path.join(info["image_dirs"]["validation"], "*.jpg")))[: args.demo_images]
    demo_dir = os.path.join(args.output_dir, "demo")
    t0 = time.perf_counter()
    demo_cli.main(["--config-file", args.config_file, "--input", *val_images, "--output", demo_dir,
                   "--opts", "MODEL.WEIGHTS", os.path.join(args.output_dir, "model_final.pth"), *args.opts])
    times["demo"] = time.perf_counter() - t0

    summary = {"model": args.model, "task": args.task, **result}
    if "mIoU" in result:
        gt_files = sorted(glob.glob(os.path.join(info["annotation_dirs"]["validation"], "*.png")))
        summary["majority_class_mIoU"] = majority_class_miou(gt_files, info["num_classes"])
    summary.update({"seconds": {k: round(v, 1) for k, v in times.items()}, "total_seconds": round(sum(times.values()), 1),
                    "pictures": os.path.abspath(demo_dir)})
    print("\n==== quickstart summary ====")
    if "PQ" in summary:
        print(f"validation PQ: {summary['PQ']:.1f}  SQ: {summary['SQ']:.1f}  RQ: {summary['RQ']:.1f}  "
              f"(things PQ {summary['PQ_th']:.1f}, stuff PQ {summary['PQ_st']:.1f})")
    if "AP" in summary:
        print(f"validation mask AP: {summary['AP']:.1f}  AP50: {summary['AP50']:.1f}  AP75: {summary['AP75']:.1f}")
    if "mIoU" in summary:
        print(f"validation mIoU: {summary['mIoU']:.1f}  (pixel accuracy {summary['pACC']:.1f})")
        print(f"mIoU of predicting the most frequent class everywhere: {summary['majority_class_mIoU']:.1f}")
    print("time (s): " + ", ".join(f"{k} {v}" for k, v in summary["seconds"].items())
          + f"; total {summary['total_seconds']}")
    print(f"pictures of the predictions: {summary['pictures']}")
    with open(os.path.join(args.output_dir, "quickstart_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
