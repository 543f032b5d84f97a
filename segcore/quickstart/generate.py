"""Command line: write the quickstart dataset.

    python -m segcore.quickstart.generate --root datasets [--num-train 200] [--num-val 50]
        [--seed 0] [--size 224] [--overwrite] [--videos [--num-train-videos 60] [--num-val-videos 12]]

``--videos`` also writes the video set (YouTube-VIS layout, ``<root>/quickstart_ytvis``:
:func:`segcore.quickstart.video_dataset.generate_quickstart_videos`).

A complete dataset made with the same arguments is reused unless ``--overwrite`` is given; an
incomplete one (no completion marker, e.g. after an interruption) is regenerated.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import List, Optional

from segcore.data.datasets.quickstart import GENERATE_COMMAND

from .dataset import generate_quickstart
from .video_dataset import generate_quickstart_videos

__all__ = ["generate_quickstart", "build_argument_parser", "main"]


def build_argument_parser() -> argparse.ArgumentParser:
    """The arguments of the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog=GENERATE_COMMAND,
        description="Write the quickstart dataset (real bundled photographs with pasted objects) "
        "in the ADE20K semantic layout under <root>/quickstart_ade.",
    )
    parser.add_argument(
        "--root",
        default=os.getenv("DETECTRON2_DATASETS", "datasets"),
        help="datasets root (default: $DETECTRON2_DATASETS or ./datasets)",
    )
    parser.add_argument("--num-train", type=int, default=200, help="training images (default: 200)")
    parser.add_argument("--num-val", type=int, default=50, help="validation images (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    parser.add_argument("--size", type=int, default=224, help="longer image side in pixels (default: 224)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if a complete dataset exists")
    parser.add_argument("--videos", action="store_true",
                        help="also write the video set (YouTube-VIS layout) under <root>/quickstart_ytvis")
    parser.add_argument("--num-train-videos", type=int, default=60, help="training videos (default: 60)")
    parser.add_argument("--num-val-videos", type=int, default=12, help="validation videos (default: 12)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Write the dataset as ``argv`` asks and print where it is; returns the exit status
    (0, or 2 for bad arguments or a failed write, with the error on stderr)."""
    args = build_argument_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    start = time.perf_counter()
    try:
        result = generate_quickstart(
            args.root,
            num_train=args.num_train,
            num_val=args.num_val,
            seed=args.seed,
            size=args.size,
            overwrite=args.overwrite,
        )
        videos = generate_quickstart_videos(args.root, num_train=args.num_train_videos, num_val=args.num_val_videos,
                                            seed=args.seed, overwrite=args.overwrite) if args.videos else None
    except (ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    action = "Wrote" if result["generated"] else "Found complete (not regenerated; use --overwrite)"
    print(f"{action}: quickstart dataset in {result['dataset_dir']} "
          f"(seed {result['seed']}, size {result['size']}, {time.perf_counter() - start:.1f} s)")
    for split, info in result["splits"].items():
        present = [name for name, pixels in info["class_pixels"].items() if pixels > 0]
        print(f"  {split}: {info['num_images']} images")
        print(f"    images:              {info['image_root']}")
        print(f"    labels (detectron2): {info['sem_seg_root']}  (class id, 255 = unlabelled)")
        print(f"    labels (ADE raw):    {info['raw_annotation_root']}  (class id + 1, 0 = unlabelled)")
        print(f"    classes present:     {len(present)}/{len(info['class_pixels'])}")
    print(f"  completion marker: {result['manifest']}")
    print("  registered as: quickstart_sem_seg_train, quickstart_sem_seg_val "
          "(root from $DETECTRON2_DATASETS, default ./datasets)")
    if videos is not None:
        action = "Wrote" if videos["generated"] else "Found complete (not regenerated; use --overwrite)"
        print(f"{action}: quickstart videos in {videos['dataset_dir']} (YouTube-VIS layout)")
        for split, info in videos["splits"].items():
            print(f"  {split}: {info['num_videos']} videos, {info['num_frames']} frames, {info['num_tracks']} tracks")
            print(f"    frames: {info['image_root']}")
            print(f"    json:   {info['json_file']}")
        print("  registered as: quickstart_ytvis_train, quickstart_ytvis_val")
    return 0


if __name__ == "__main__":
    sys.exit(main())
