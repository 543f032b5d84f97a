#!/usr/bin/env python
"""The quickstart: make the bundled dataset, train MaskFormer on it from scratch, evaluate, demo.

Runs on a CPU in minutes::

    python tools/quickstart.py                       # everything, defaults below
    python tools/quickstart.py --num-gpus 2          # two training processes
    python tools/quickstart.py --task panoptic       # panoptic segmentation (PQ, SQ, RQ)

Steps (each is the project's normal command line, run in-process):
1. ``python -m segcore.data.quickstart.generate --root $DETECTRON2_DATASETS`` (skipped if present);
2. ``train_net.py --config-file configs/quickstart/maskformer_R18_quickstart.yaml`` (trains, then
   evaluates mIoU on ``quickstart_sem_seg_val``);
3. ``demo/demo.py`` on validation images, pictures written to ``<OUTPUT_DIR>/demo``.
It ends with a summary: mIoU, the mIoU of predicting the most frequent class everywhere, the time
of each step, and where the pictures are.
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

#: --task -> (config, default output folder)
TASKS = {
    "semantic": (os.path.join(ROOT, "configs", "quickstart", "maskformer_R18_quickstart.yaml"), "output/quickstart"),
    "panoptic": (os.path.join(ROOT, "configs", "quickstart", "maskformer_panoptic_R18_quickstart.yaml"),
                 "output/quickstart_panoptic"),
}


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
    parser.add_argument("--task", choices=sorted(TASKS), default="semantic",
                        help="semantic (mIoU) or panoptic (PQ, SQ, RQ; also mIoU)")
    parser.add_argument("--config-file", default=None, help="default: the task's quickstart config")
    parser.add_argument("--datasets-root", default=os.getenv("DETECTRON2_DATASETS", "datasets"))
    parser.add_argument("--output-dir", default=None, help="default: output/quickstart[_panoptic]")
    parser.add_argument("--num-gpus", type=int, default=1, help="training processes (CPU processes without CUDA)")
    parser.add_argument("--demo-images", type=int, default=8, help="validation images drawn by the demo")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE config overrides")
    args = parser.parse_args(argv)
    args.config_file = args.config_file or TASKS[args.task][0]
    args.output_dir = args.output_dir or TASKS[args.task][1]
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
    evals = [r for r in records if "sem_seg/mIoU" in r]
    if not evals:
        raise RuntimeError(f"No evaluation result found in {args.output_dir}/metrics.json")
    result = evals[-1]

    import demo as demo_cli

    val_images = sorted(glob.glob(os.path.join(info["image_dirs"]["validation"], "*.jpg")))[: args.demo_images]
    demo_dir = os.path.join(args.output_dir, "demo")
    t0 = time.perf_counter()
    demo_cli.main(["--config-file", args.config_file, "--input", *val_images, "--output", demo_dir,
                   "--opts", "MODEL.WEIGHTS", os.path.join(args.output_dir, "model_final.pth"), *args.opts])
    times["demo"] = time.perf_counter() - t0

    gt_files = sorted(glob.glob(os.path.join(info["annotation_dirs"]["validation"], "*.png")))
    baseline = majority_class_miou(gt_files, info["num_classes"])
    summary = {
        "task": args.task, "mIoU": result["sem_seg/mIoU"], "pACC": result.get("sem_seg/pACC"),
        **{k: result[f"panoptic_seg/{k}"] for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st") if f"panoptic_seg/{k}" in result},
        "majority_class_mIoU": baseline, "seconds": {k: round(v, 1) for k, v in times.items()},
        "total_seconds": round(sum(times.values()), 1), "pictures": os.path.abspath(demo_dir),
    }
    print("\n==== quickstart summary ====")
    if "PQ" in summary:
        print(f"validation PQ: {summary['PQ']:.1f}  SQ: {summary['SQ']:.1f}  RQ: {summary['RQ']:.1f}  "
              f"(things PQ {summary['PQ_th']:.1f}, stuff PQ {summary['PQ_st']:.1f})")
    print(f"validation mIoU: {summary['mIoU']:.1f}  (pixel accuracy {summary['pACC']:.1f})")
    print(f"mIoU of predicting the most frequent class everywhere: {baseline:.1f}")
    print("time (s): " + ", ".join(f"{k} {v}" for k, v in summary["seconds"].items())
          + f"; total {summary['total_seconds']}")
    print(f"pictures of the predictions: {summary['pictures']}")
    with open(os.path.join(args.output_dir, "quickstart_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
