"""The quickstart runs: each trains one model family on the generated dataset, evaluates it and
draws its predictions, then reports what it reached (``tools/quickstart.py`` is the command line).

:data:`QUICKSTARTS` names each (model, task) quickstart's config (in the repository's
``configs/quickstart/``) and output folder; :func:`run_quickstart` runs one with the project's
ordinary command lines (given as functions, since ``train_net.py`` and ``demo/demo.py`` are scripts);
:func:`render_results_table` and :func:`update_readme` write README's results table from runs.
"""
from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import platform
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = ["ABLATIONS", "ALL_OUTPUT_DIR", "QUICKSTARTS", "README_BEGIN", "README_END", "SUMMARY_METRICS", "VIDEO_TASKS",
           "machine_description", "majority_class_miou", "print_summary", "quickstart_config", "render_results_table",
           "run_quickstart", "update_readme"]

#: the repository (where configs/ is): this file is segcore/quickstart/runs.py
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: (model, task) -> (config file in the repository's configs/quickstart/, default output folder)
QUICKSTARTS = {
    ("maskformer", "semantic"): ("maskformer_R18_quickstart.yaml", "output/quickstart"),
    ("maskformer", "panoptic"): ("maskformer_panoptic_R18_quickstart.yaml", "output/quickstart_panoptic"),
    ("mask2former", "semantic"): ("mask2former_R18_quickstart.yaml", "output/quickstart_mask2former"),
    ("mask2former", "panoptic"): ("mask2former_panoptic_R18_quickstart.yaml", "output/quickstart_mask2former_panoptic"),
    ("mask2former", "instance"): ("mask2former_instance_R18_quickstart.yaml", "output/quickstart_mask2former_instance"),
    ("maskformer-swin", "semantic"): ("maskformer_swin_quickstart.yaml", "output/quickstart_maskformer_swin"),
    ("semask", "semantic"): ("semask_maskformer_swin_quickstart.yaml", "output/quickstart_semask"),
    ("semask-fpn", "semantic"): ("semask_fpn_swin_quickstart.yaml", "output/quickstart_semask_fpn"),
    ("mask2former-video", "video"): ("video_maskformer2_R18_quickstart.yaml", "output/quickstart_video_maskformer2"),
}
#: the tasks whose quickstart trains on the generated videos (YouTube-VIS layout) rather than the images
VIDEO_TASKS = ("video",)
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
                   train: Callable[[List[str]], object], draw: Callable[[List[str]], object], num_gpus: int = 1,
                   demo_images: int = 8, opts: Sequence[str] = (),
                   draw_video: Optional[Callable[[List[str]], object]] = None) -> dict:
    """Generate the data (if needed), train + evaluate ``config_file``, draw ``demo_images`` validation
    images (a video task: one validation video), and return (and write to
    ``<output_dir>/quickstart_summary.json``) the summary.

    Args:
        model, task: the quickstart's names (for the summary). config_file: its config.
        output_dir: ``OUTPUT_DIR`` of the run. datasets_root: where the dataset is (generated if absent;
            the video set for a task of :data:`VIDEO_TASKS`).
        train: ``train_net.py``'s command line as a function of its arguments (``train_net.cli``).
        draw: ``demo/demo.py``'s (``demo.main``).
        num_gpus: training processes. demo_images: validation images drawn. opts: config overrides.
        draw_video: ``demo_video/demo.py``'s (its ``main``), for a video task.

    Returns:
        ``{"model", "task", <metrics: mIoU, pACC, PQ, SQ, RQ, PQ_th, PQ_st, AP, AP50, AP75 as
        evaluated (video AP for a video task)>, "majority_class_mIoU" (semantic output only),
        "seconds": {step: s}, "total_seconds", "pictures"}``.

    Raises:
        RuntimeError: training wrote no evaluation result.
        ValueError: a video task without ``draw_video``.
    """
    video = task in VIDEO_TASKS
    if video and draw_video is None:
        raise ValueError(f"The {model} {task} quickstart draws a video: pass draw_video (demo_video/demo.py's main)")
    os.environ["DETECTRON2_DATASETS"] = os.path.abspath(datasets_root)
    # evaluators read metadata paths bound at import: bind them to this root (worker processes
    # started by the launcher import after the variable is set)
    from segcore.data.datasets.quickstart import register_quickstart_datasets

    register_quickstart_datasets(os.path.abspath(datasets_root))
    times = {}
    t0 = time.perf_counter()
    info = generate_quickstart_videos(datasets_root) if video else generate_quickstart(datasets_root)
    times["generate"] = time.perf_counter() - t0

    overrides = ["OUTPUT_DIR", output_dir, *opts]
    t0 = time.perf_counter()
    with _closing_new_log_files():  # the next run in this process logs to its own log.txt only
        train(["--config-file", config_file, "--num-gpus", str(num_gpus), *overrides])
    times["train+eval"] = time.perf_counter() - t0

    with open(os.path.join(output_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    result = {}
    for record in records:  # the last value of every reported metric
        for evaluation, names in SUMMARY_METRICS.items():
            result.update({k: record[f"{evaluation}/{k}"] for k in names if f"{evaluation}/{k}" in record})
    if not result:
        raise RuntimeError(f"No evaluation result found in {output_dir}/metrics.json")

    demo_dir = os.path.join(output_dir, "demo")
    weights = ["--opts", "MODEL.WEIGHTS", os.path.join(output_dir, "model_final.pth"), *opts]
    t0 = time.perf_counter()
    if video:  # the first validation video: its drawn frames and visualization.mp4
        first = sorted(glob.glob(os.path.join(info["splits"]["valid"]["image_root"], "*")))[0]
        draw_video(["--config-file", config_file, "--input", os.path.join(first, "*.jpg"), "--output", demo_dir,
                    "--save-frames", *weights])
    else:
        val_images = sorted(glob.glob(os.path.join(info["image_dirs"]["validation"], "*.jpg")))[:demo_images]
        draw(["--config-file", config_file, "--input", *val_images, "--output", demo_dir, *weights])
    times["demo"] = time.perf_counter() - t0

    summary = {"model": model, "task": task, "config": _display_path(config_file), **result}
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
        kind = "video" if summary["task"] in VIDEO_TASKS else "mask"
        print(f"validation {kind} AP: {summary['AP']:.1f}  AP50: {summary['AP50']:.1f}  AP75: {summary['AP75']:.1f}")
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
             "fresh output folder (200 training and 50 validation images; the video task 60 training and 12",
             "validation videos of 5 frames; seeds fixed):", "",
             "| model | task | config | mIoU | PQ | SQ | RQ | PQ things | PQ stuff | AP (mask; video) | AP50 | train + eval | total |",
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
    """The CPU (model, logical CPUs, vector instructions), GPU, platform, Python and torch versions,
    and the date: where the figures were measured."""
    import torch

    from segcore.benchmark.machine import describe_cpu

    device = describe_cpu() + (f", and {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                               else " (no GPU)")
    return (f"{device}, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {datetime.date.today().isoformat()}")


def generate_quickstart(root: str, **kwargs) -> dict:
    """:func:`segcore.quickstart.dataset.generate_quickstart`, imported when called (the generator
    imports scikit-image; the quickstart table alone does not need it)."""
    from .dataset import generate_quickstart as generate

    return generate(root, **kwargs)


def generate_quickstart_videos(root: str, **kwargs) -> dict:
    """:func:`segcore.quickstart.video_dataset.generate_quickstart_videos`, imported when called."""
    from .video_dataset import generate_quickstart_videos as generate

    return generate(root, **kwargs)


def quickstart_config(model: str, task: str) -> Tuple[str, str]:
    """(config file, default output folder) of a quickstart.

    Raises:
        KeyError: no such (model, task) quickstart (the message lists them).
    """
    if (model, task) not in QUICKSTARTS:
        raise KeyError(f"No quickstart for --model {model} --task {task}; there are {sorted(QUICKSTARTS)}")
    config, output_dir = QUICKSTARTS[(model, task)]
    return os.path.join(REPO_ROOT, "configs", "quickstart", config), output_dir


def _display_path(path: str) -> str:
    """``path`` relative to the repository when it is inside it (as README's table shows configs)."""
    relative = os.path.relpath(os.path.abspath(path), REPO_ROOT)
    return path if relative.startswith("..") else relative
