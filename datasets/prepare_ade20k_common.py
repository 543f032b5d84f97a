"""What the ADE20K panoptic and instance converters share (not a command of its own): the splits of
the ``ADEChallengeData2016`` release and the command line that converts each of them.

``prepare_ade20k_pan_seg.py`` and ``prepare_ade20k_ins_seg.py`` import it; run as scripts
(``python datasets/prepare_ade20k_pan_seg.py``), they find it beside them, in the folder Python puts
first on ``sys.path``.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Dict, Optional, Sequence

__all__ = ["DATASET_DIRNAME", "SPLITS", "convert_splits_main"]

#: the release's folder under the datasets root
DATASET_DIRNAME = "ADEChallengeData2016"
#: (split name in the written file names, split folder of the release)
SPLITS = (("train", "training"), ("val", "validation"))


def convert_splits_main(
    convert_split: Callable[[str, str, str], int], description: str, argv: Optional[Sequence[str]] = None
) -> Dict[str, int]:
    """The command line of a converter: ``--root`` (default ``$DETECTRON2_DATASETS`` or
    ``./datasets``), then ``convert_split(<root>/ADEChallengeData2016, name, folder)`` for each of
    :data:`SPLITS`.

    Args:
        convert_split: writes one split's files and returns its number of images.
        description: the help text (the converter's module docstring).
        argv: the arguments (default: the command line's).

    Returns:
        ``{split name: number of images}``, also printed.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.getenv("DETECTRON2_DATASETS", "datasets"), help="datasets root")
    args = parser.parse_args(argv)
    dataset_dir = os.path.join(args.root, DATASET_DIRNAME)
    counts = {name: convert_split(dataset_dir, name, dirname) for name, dirname in SPLITS}
    print(counts)
    return counts
