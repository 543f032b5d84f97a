#!/usr/bin/env python
"""Draw a video instance segmentation model's tracks on the frames of one video.

The command line of the original Mask2Former ``demo_video/demo.py``::

    python demo_video/demo.py --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml \\
        --input 'frames/*.jpg' --output out/ --opts MODEL.WEIGHTS model_final_34e0de.pkl
    python demo_video/demo.py --config-file CONFIG --video-input clip.mp4 --output out/ --save-frames

``--input``: the frames of one video (paths, a folder or glob patterns, in sorted order);
``--video-input``: a video file. The model sees the whole video as one clip, as the original (memory
grows with the number of frames: ``MODEL_ZOO.md``, "Video instance segmentation"), or window by window
with ``--window N`` (:class:`mask2former_video.inference.WindowedVideoInference`: windows of N frames
overlapping by ``--overlap`` frames, their queries linked by mask overlap; bounded memory, but a
query sees only its window). Each of the top predictions whose score reaches
``--confidence-threshold`` is drawn in one colour in every frame, labelled with its class and score.
Writes ``<output>/visualization.mp4`` (the original's name; 10 frames per second for ``--input``,
the video's frame rate for ``--video-input``) and, with ``--save-frames``, every drawn frame
(``--input``: the frames' file names; ``--video-input``: ``00000.jpg``, ...).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import time
from typing import List, Optional

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

from segcore.data import MetadataCatalog  # noqa: E402
from segcore.data.detection_utils import read_image  # noqa: E402
from segcore.engine import run_cli, setup_cfg  # noqa: E402
from segcore.utils.logger import setup_logger  # noqa: E402
from segcore.utils.video import VideoWriter, get_video_info, iter_frames, open_video  # noqa: E402

logger = logging.getLogger("segcore.demo_video")

#: the output video's name (the original's) and its frame rate for --input frames (the original's)
VIDEO_NAME = "visualization.mp4"
FRAMES_FPS = 10.0


def _image_demo():
    """``demo/demo.py`` (its input expansion), loaded by path: this file's folder would shadow its name."""
    spec = importlib.util.spec_from_file_location("segcore_image_demo", os.path.join(_ROOT, "demo", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_parser() -> argparse.ArgumentParser:
    """The video demo's command line (the original's options, plus ``--window`` / ``--overlap``)."""
    parser = argparse.ArgumentParser(description="Draw a video model's tracks on the frames of a video.")
    parser.add_argument("--config-file", default=os.path.join(_ROOT, "configs", "youtubevis_2019",
                                                              "video_maskformer2_R50_bs16_8ep.yaml"),
                        metavar="FILE", help="path to a video model's config")
    parser.add_argument("--input", nargs="+", help="the frames of one video: paths, a folder or glob patterns "
                        "('frames/*.jpg'), taken in sorted order")
    parser.add_argument("--video-input", help="a video file OpenCV can decode")
    parser.add_argument("--output", required=True, help=f"folder for {VIDEO_NAME} (and the frames with --save-frames)")
    parser.add_argument("--save-frames", action="store_true", help="also write every drawn frame")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="minimum score of a drawn instance (default 0.5)")
    parser.add_argument("--window", type=int, default=None,
                        help="run the model on windows of this many frames and link their tracks (bounded memory) "
                        "instead of on the whole video as one clip (the original's and the evaluation's way)")
    parser.add_argument("--overlap", type=int, default=1, help="frames shared by consecutive windows (with --window)")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser


def read_frames(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """(BGR frames, their output file names, frames per second) of ``--input`` or ``--video-input``."""
    if args.input:
        try:
            paths = sorted(_image_demo().expand_inputs(args.input))
        except FileNotFoundError as e:
            parser.error(str(e))
        return [read_image(p, format="BGR") for p in paths], [os.path.basename(p) for p in paths], FRAMES_FPS
    if not os.path.isfile(args.video_input):
        parser.error(f"--video-input file '{args.video_input}' does not exist")
    cap = open_video(args.video_input)
    fps = get_video_info(cap).fps
    frames = list(iter_frames(cap))
    cap.release()
    if not frames:
        parser.error(f"--video-input file '{args.video_input}' has no frame OpenCV can decode")
    return frames, [f"{i:05d}.jpg" for i in range(len(frames))], fps


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the video demo with ``argv`` (default ``sys.argv[1:]``).

    Returns:
        ``{"predictions": the model's video output, "video": the mp4 written, "frames": the frame
        files written ([] without --save-frames)}``.

    Raises:
        SystemExit: a bad command line (status 2, the message says what is wrong).
    """
    parser = get_parser()
    args = parser.parse_args(argv)
    if bool(args.input) == bool(args.video_input):
        parser.error("give exactly one of --input (frames) and --video-input (a video file)")
    if not 0.0 <= args.confidence_threshold <= 1.0:
        parser.error(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    if args.window is not None and (args.window < 1 or not 1 <= args.overlap < max(args.window, 2)):
        parser.error(f"--window must be >= 1 and --overlap in [1, window - 1], got {args.window} and {args.overlap}")
    setup_logger(name="fvcore")
    setup_logger(name="segcore")
    frames, names, fps = read_frames(args, parser)
    if len({f.shape for f in frames}) != 1:
        parser.error("the frames of a video must all have the same size")

    from mask2former_video.predictor import VideoPredictor
    from mask2former_video.visualization import draw_video_predictions

    cfg = setup_cfg(args.config_file, args.opts)
    predictor = VideoPredictor(cfg, window=args.window, overlap=args.overlap)
    start = time.perf_counter()
    predictions = predictor(frames)
    logger.info("%d frames: %d predictions in %.2f s", len(frames), len(predictions["pred_scores"]),
                time.perf_counter() - start)
    metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0]) if len(cfg.DATASETS.TEST) else None
    drawings = draw_video_predictions([np.ascontiguousarray(f[:, :, ::-1]) for f in frames], predictions, metadata,
                                      confidence_threshold=args.confidence_threshold)
    os.makedirs(args.output, exist_ok=True)
    written = []
    if args.save_frames:
        for name, vis in zip(names, drawings):
            path = os.path.join(args.output, name)
            vis.save(path)
            written.append(path)
    height, width = drawings[0].height, drawings[0].width
    with VideoWriter(os.path.join(args.output, VIDEO_NAME), fps, (width, height)) as writer:
        for vis in drawings:
            writer.write(np.ascontiguousarray(vis.get_image()[:, :, ::-1]))
    logger.info("Wrote %s%s", writer.path, f" and {len(written)} frames" if written else "")
    return {"predictions": predictions, "video": writer.path, "frames": written}


if __name__ == "__main__":
    run_cli(main, prog="demo_video/demo.py")
