#!/usr/bin/env python
"""Evaluate saved video instance segmentation results offline, as the YouTube-VIS API does.

    python tools/evaluate_ytvis.py --gt datasets/ytvis_2019/valid.json --results output/inference/results.json

``--results``: a ``results.json`` in the evaluation server's format (a list of ``{"video_id",
"category_id" (the dataset's id), "score", "segmentations": [RLE per frame]}``), as
``train_net.py --eval-only`` writes it (``mask2former_video.evaluation.YTVISEvaluator``). ``--gt``: a
YouTube-VIS json with annotations. Prints one JSON object with the API's 12 summary numbers
(fractions in [0, 1], -1 where a size range has no object): ``AP, AP50, AP75, APs, APm, APl, AR1,
AR10, AR100, ARs, ARm, ARl`` (``mask2former_video.evaluation.evaluate_ytvis_files``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mask2former_video.evaluation import evaluate_ytvis_files  # noqa: E402
from segcore.engine import run_cli  # noqa: E402


def main(argv=None) -> dict:
    """Parse ``argv``, evaluate, print the numbers as JSON and return them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="YouTube-VIS json with annotations (e.g. a validation split)")
    parser.add_argument("--results", required=True, help="results.json (the evaluation server's format)")
    args = parser.parse_args(argv)
    try:
        numbers = evaluate_ytvis_files(args.gt, args.results)
    except ValueError as e:
        parser.error(str(e))
    print(json.dumps(numbers, indent=2))
    return numbers


if __name__ == "__main__":
    run_cli(main, prog="evaluate_ytvis.py")
