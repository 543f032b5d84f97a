#!/usr/bin/env python
"""The quickstart: make the bundled dataset, train a model on it from scratch, evaluate, demo.

Runs on a CPU in minutes::

    python tools/quickstart.py                                      # MaskFormer, semantic (mIoU)
    python tools/quickstart.py --num-gpus 2                         # two training processes
    python tools/quickstart.py --task panoptic                      # panoptic segmentation (PQ, SQ, RQ)
    python tools/quickstart.py --model mask2former --task instance  # Mask2Former, instance (mask AP)
    python tools/quickstart.py --model semask                       # SeMask-MaskFormer, semantic
    python tools/quickstart.py --all --update-readme                # every quickstart; README's table

``--model`` is ``maskformer`` or ``mask2former`` (ResNet-18), ``semask`` (SeMask-MaskFormer: a small
SeMask Swin), ``maskformer-swin`` (the same model without the Semantic Layers and the semantic-prior
loss, its baseline, trained with the same budget) or ``semask-fpn`` (SeMask-FPN); ``--task`` is
``semantic``, ``panoptic`` (MaskFormer, Mask2Former) or ``instance`` (Mask2Former); see
:data:`QUICKSTARTS`. Steps (each is the project's normal command line, run in-process):
1. ``python -m segcore.data.quickstart.generate --root $DETECTRON2_DATASETS`` (skipped if present);
2. ``train_net.py --config-file configs/quickstart/<the model's and task's config>`` (trains, then
   evaluates on the validation split);
3. ``demo/demo.py`` on validation images, pictures written to ``<OUTPUT_DIR>/demo``.
It ends with a summary: the metrics, for semantic and panoptic the mIoU of predicting the most
frequent class everywhere, the time of each step, and where the pictures are.

``--all`` runs every model x task quickstart, each in a fresh output folder under
``output/quickstart_all/``; ``--update-readme`` then rewrites the results table of README.md (the
lines between :data:`README_BEGIN` and :data:`README_END`) from those runs, so the figures the
README states are the ones this command measured. Run it whenever training, data or inference
code changes.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import json
import os
import platform
import shutil
import sys
import time
from typing import List, Sequence

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
    ("maskformer-swin", "semantic"): (os.path.join(_CONFIGS, "maskformer_swin_quickstart.yaml"),
                                      "output/quickstart_maskformer_swin"),
    ("semask", "semantic"): (os.path.join(_CONFIGS, "semask_maskformer_swin_quickstart.yaml"),
                             "output/quickstart_semask"),
    ("semask-fpn", "semantic"): (os.path.join(_CONFIGS, "semask_fpn_swin_quickstart.yaml"),
                                 "output/quickstart_semask_fpn"),
}
#: (model, its baseline): the same model without one idea, trained with the same budget; the README
#: table states the mIoU difference (SeMask's Semantic Layers and semantic-prior loss)
ABLATIONS = (("semask", "maskformer-swin"),)
#: where --all writes its runs
ALL_OUTPUT_DIR = "output/quickstart_all"
#: the README lines between these markers are the table --update-readme writes
README_BEGIN = "<!-- quickstart-results: begin (written by tools/quickstart.py --all --update-readme) -->"
README_END = "<!-- quickstart-results: end -->"
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


@contextlib.contextmanager
def _closing_new_log_files():
    """Detach the log files set up inside the block (``train_net`` adds ``OUTPUT_DIR/log.txt``), so
    that with ``--all`` each run's log holds that run only."""
    from segcore.utils.logger import detach_log_file_handlers, log_file_handlers

    before = log_file_handlers()
    try:
        yield
    finally:
        detach_log_file_handlers(log_file_handlers() - before)


def run_quickstart(model: str, task: str, *, config_file: str, output_dir: str, datasets_root: str,
                   num_gpus: int = 1, demo_images: int = 8, opts: Sequence[str] = ()) -> dict:
    """Generate the data (if needed), train + evaluate ``config_file``, draw ``demo_images`` validation
    images, and return (and write to ``<output_dir>/quickstart_summary.json``) the summary.

    Returns:
        ``{"model", "task", <metrics: mIoU, pACC, PQ, SQ, RQ, PQ_th, PQ_st, AP, AP50, AP75 as
        evaluated>, "majority_class_mIoU" (semantic output only), "seconds": {step: s},
        "total_seconds", "pictures"}``.

    Raises:
        RuntimeError: training wrote no evaluation result.
    """
    os.environ["DETECTRON2_DATASETS"] = os.path.abspath(datasets_root)
    from segcore.data import quickstart as quickstart_data

    times = {}
    t0 = time.perf_counter()
    info = quickstart_data.generate_quickstart(datasets_root)
    times["generate"] = time.perf_counter() - t0

    import train_net

    overrides = ["OUTPUT_DIR", output_dir, *opts]
    t0 = time.perf_counter()
    with _closing_new_log_files():  # the next run in this process logs to its own log.txt only
        train_net.cli(["--config-file", config_file, "--num-gpus", str(num_gpus), *overrides])
    times["train+eval"] = time.perf_counter() - t0

    with open(os.path.join(output_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    result = {}
    for record in records:  # the last value of every reported metric
        for evaluation, names in SUMMARY_METRICS.items():
            result.update({k: record[f"{evaluation}/{k}"] for k in names if f"{evaluation}/{k}" in record})
    if not result:
        raise RuntimeError(f"No evaluation result found in {output_dir}/metrics.json")

    import demo as demo_cli

    val_images = sorted(glob.glob(os.path.join(info["image_dirs"]["validation"], "*.jpg")))[:demo_images]
    demo_dir = os.path.join(output_dir, "demo")
    t0 = time.perf_counter()
    demo_cli.main(["--config-file", config_file, "--input", *val_images, "--output", demo_dir,
                   "--opts", "MODEL.WEIGHTS", os.path.join(output_dir, "model_final.pth"), *opts])
    times["demo"] = time.perf_counter() - t0

    summary = {"model": model, "task": task, "config": os.path.relpath(config_file, ROOT), **result}
    if "mIoU" in result:
        gt_files = sorted(glob.glob(os.path.join(info["annotation_dirs"]["validation"], "*.png")))
        summary["majority_class_mIoU"] = majority_class_miou(gt_files, info["num_classes"])
    summary.update({"seconds": {k: round(v, 1) for k, v in times.items()}, "total_seconds": round(sum(times.values()), 1),
                    "pictures": os.path.abspath(demo_dir)})
    print_summary(summary)
    with open(os.path.join(output_dir, "quickstart_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def print_summary(summary: dict) -> None:
    """Print one quickstart's summary (see :func:`run_quickstart`)."""
    print(f"\n==== quickstart summary: {summary['model']} {summary['task']} ====")
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


def _minutes(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s" if minutes else f"{sec} s"


def render_results_table(summaries: List[dict], machine: str) -> str:
    """The README's results block (Markdown) for the quickstart ``summaries``, measured on ``machine``."""
    def value(s: dict, key: str) -> str:
        return f"{s[key]:.1f}" if key in s else ""

    lines = [f"Measured by `python tools/quickstart.py --all --update-readme` on {machine}, each run in a",
             "fresh output folder (200 training and 50 validation images, seeds fixed):", "",
             "| model | task | config | mIoU | PQ | SQ | RQ | PQ things | PQ stuff | mask AP | AP50 | train + eval | total |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        metrics = " | ".join(value(s, k) for k in ("mIoU", "PQ", "SQ", "RQ", "PQ_th", "PQ_st", "AP", "AP50"))
        lines.append(f"| {s['model']} | {s['task']} | `{s['config']}` | {metrics} | "
                     f"{_minutes(s['seconds']['train+eval'])} | {_minutes(s['total_seconds'])} |")
    baselines = sorted({round(s["majority_class_mIoU"], 1) for s in summaries if "majority_class_mIoU" in s})
    if baselines:
        lines += ["", "Predicting the most frequent validation class everywhere gives mIoU "
                  + ", ".join(f"{b:.1f}" for b in baselines) + "."]
    semantic = {s["model"]: s for s in summaries if s["task"] == "semantic" and "mIoU" in s}
    for model, baseline in ABLATIONS:
        if model in semantic and baseline in semantic:
            delta = semantic[model]["mIoU"] - semantic[baseline]["mIoU"]
            lines += ["", f"{model} vs {baseline} (the same model without it, the same data, schedule and budget): "
                      f"mIoU {semantic[model]['mIoU']:.1f} vs {semantic[baseline]['mIoU']:.1f}, {delta:+.1f}."]
    return "\n".join(lines)


def update_readme(readme_path: str, table: str) -> None:
    """Replace the lines between :data:`README_BEGIN` and :data:`README_END` in ``readme_path`` with ``table``.

    Raises:
        ValueError: the README lacks the markers (or has them in the wrong order).
    """
    with open(readme_path, encoding="utf-8") as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme_path} has no '{README_BEGIN}' ... '{README_END}' block to update")
    text = text[: begin + len(README_BEGIN)] + "\n" + table + "\n" + text[end:]
    with open(readme_path, "w", encoding="utf-8") as f:
        f.write(text)


def machine_description() -> str:
    """CPU cores, platform, Python and torch versions, and the date: where the figures were measured."""
    import torch

    device = f"a {os.cpu_count()}-core CPU" + (f" and {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                                                else " (no GPU)")
    return (f"{device}, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {datetime.date.today().isoformat()}")


def main(argv=None):
    """Run the quickstart(s) of the command line; returns the summary (a list of them with ``--all``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted({m for m, _ in QUICKSTARTS}), default="maskformer")
    parser.add_argument("--task", choices=sorted({t for _, t in QUICKSTARTS}), default="semantic",
                        help="semantic (mIoU), panoptic (PQ, SQ, RQ; also mIoU; maskformer, mask2former) or "
                             "instance (mask AP; mask2former)")
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
    if args.update_readme and not args.all:
        parser.error("--update-readme rewrites the table of every quickstart: use it with --all")
    if args.all:
        if args.config_file or args.output_dir:
            parser.error("--all runs the quickstart configs into their own folders: drop --config-file / --output-dir")
        summaries = []
        for (model, task), (config, _) in QUICKSTARTS.items():
            output_dir = os.path.join(ALL_OUTPUT_DIR, f"{model}_{task}")
            shutil.rmtree(output_dir, ignore_errors=True)  # a fresh folder: nothing resumed, nothing reused
            summaries.append(run_quickstart(model, task, config_file=config, output_dir=output_dir,
                                            datasets_root=args.datasets_root, num_gpus=args.num_gpus,
                                            demo_images=args.demo_images, opts=args.opts))
        with open(os.path.join(ALL_OUTPUT_DIR, "summary.json"), "w") as f:
            json.dump(summaries, f, indent=2)
        if args.update_readme:
            update_readme(args.update_readme, render_results_table(summaries, machine_description()))
            print(f"Updated the quickstart results table of {args.update_readme}")
        return summaries
    if (args.model, args.task) not in QUICKSTARTS:
        available = sorted(t for m, t in QUICKSTARTS if m == args.model)
        parser.error(f"--model {args.model} has no --task {args.task} quickstart; choose one of {available}")
    config, output_dir = QUICKSTARTS[(args.model, args.task)]
    return run_quickstart(args.model, args.task, config_file=args.config_file or config,
                          output_dir=args.output_dir or output_dir, datasets_root=args.datasets_root,
                          num_gpus=args.num_gpus, demo_images=args.demo_images, opts=args.opts)


if __name__ == "__main__":
    main()
