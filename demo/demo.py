#!/usr/bin/env python
"""Draw a model's predictions on images, a video file or a webcam stream.

The command line of Detectron2's and Mask2Former's ``demo/demo.py``::

    python demo/demo.py --config-file configs/ade20k-150/maskformer_R50_bs16_160k.yaml \\
        --input photos/*.jpg --output vis/ --opts MODEL.WEIGHTS model_final.pkl
    python demo/demo.py --config-file CONFIG --video-input clip.mp4 --output vis/
    python demo/demo.py --config-file CONFIG --webcam
    python demo/demo.py --exported export/m2f_ade --input photo.jpg --output vis/   # an exported model

``--input`` takes paths, folders (their image files) and glob patterns (quote them to let the demo
expand them). Without
``--output`` the drawings are shown in an OpenCV window, which needs a display and an OpenCV
build with GUI support; otherwise ``--output`` is required.
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import time
from typing import List, Optional, Tuple

_DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(_DEMO_DIR), _DEMO_DIR):  # the repository root, and predictor.py
    if _path not in sys.path:
        sys.path.insert(0, _path)

import cv2  # noqa: E402
import tqdm  # noqa: E402

from predictor import DRAWABLE_OUTPUTS, VisualizationDemo  # noqa: E402
from segcore.engine import run_cli  # noqa: E402
from segcore.engine import setup_cfg as setup_cfg_from_file  # noqa: E402
from segcore.data.detection_utils import read_image  # noqa: E402
from segcore.utils.logger import setup_logger  # noqa: E402
from segcore.utils.video import SUPPORTED_VIDEO_EXTENSIONS, VideoWriter, get_video_info, open_video  # noqa: E402

WINDOW_NAME = "segmentation demo"
_ESC_KEY = 27
_GLOB_CHARS = set("*?[")
# Name of the video written for --webcam when --output is a folder.
_WEBCAM_VIDEO_NAME = "webcam.mp4"

logger = logging.getLogger("segcore.demo")


def setup_logging() -> logging.Logger:
    """Set up the demo's console logging and return the demo's logger ("segcore.demo").

    The "fvcore" and "segcore" loggers get one console handler each; the demo's records reach
    the console through "segcore" only. Calling this again (or after ``default_setup``, as the
    quickstart does) adds nothing, so every line is printed once.
    """
    setup_logger(name="fvcore")
    setup_logger(name="segcore")
    return logger


def setup_cfg(args: argparse.Namespace):
    """Build the frozen config: defaults, every installed model family's keys, the file, the overrides.

    Model families (MaskFormer, and later ones) declare themselves through the
    ``segcore.model_families`` entry point (see :mod:`segcore.config.families`), so a new family
    is picked up here without changing the demo. ``MODEL.DEVICE`` falls back to ``cpu`` when it
    asks for CUDA and CUDA is unavailable.

    Raises:
        segcore.config.ConfigError: unreadable file or unknown key (named in the message).
    """
    return setup_cfg_from_file(args.config_file, args.opts)


def get_parser() -> argparse.ArgumentParser:
    """The demo's command line (Detectron2's demo options)."""
    parser = argparse.ArgumentParser(description="Draw segmentation predictions on images, a video or a webcam.")
    parser.add_argument("--config-file", metavar="FILE", help="path to a config file (not needed with --exported)")
    parser.add_argument("--exported", metavar="DIR",
                        help="run an exported model (tools/deploy/export_model.py: model.onnx on onnxruntime, "
                             "model.pt2 or model_aoti.pt2) instead of building one from a config; names and colours come from its "
                             "export_info.json")
    parser.add_argument("--webcam", action="store_true", help="take frames from the default webcam")
    parser.add_argument("--video-input", metavar="FILE", help="path to a video file")
    parser.add_argument(
        "--input", nargs="+", metavar="PATH",
        help="image paths, folders (their image files) and/or glob patterns such as 'directory/*.jpg' "
        "(expanded by the demo)",
    )
    parser.add_argument(
        "--output", metavar="PATH",
        help="where to save the drawings: for images a file (one input) or a folder (created if "
        "missing; files keep the input names); for a video a file, or a folder receiving "
        "<video name>.mp4. Without it, results are shown in a window (needs a display).",
    )
    parser.add_argument(
        "--confidence-threshold", type=float, default=0.5,
        help="minimum score to draw: instances and panoptic segments with a lower score are not "
        "drawn; for semantic output, pixels whose top-class probability is lower are left undrawn",
    )
    parser.add_argument(
        "--draw", default="auto", choices=["auto", *DRAWABLE_OUTPUTS, "all"],
        help="which output to draw: 'auto' (panoptic, else instances, else semantic, as Mask2Former's "
        "demo), one of them, or 'all' (images only: one drawing per output, saved as "
        "<name>_<output><ext>; a Mask2Former model with its three test switches on returns all three)",
    )
    parser.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, metavar="KEY VALUE",
        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pkl",
    )
    return parser


def display_available() -> bool:
    """Whether ``cv2.imshow`` can open a window: OpenCV built with a GUI backend, and on Linux a
    ``DISPLAY`` or ``WAYLAND_DISPLAY`` to show it on."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return True


def image_extensions() -> List[str]:
    """The file extensions (lower case, with the dot) of the image formats the demo can read:
    those Pillow opens (``read_image`` reads images with Pillow)."""
    from PIL import Image

    Image.init()
    return sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _folder_images(folder: str) -> List[str]:
    """The image files directly inside ``folder`` (by extension, case-insensitive), sorted."""
    extensions = set(image_extensions())
    names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in extensions)
    return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]


def expand_inputs(patterns: List[str]) -> List[str]:
    """Expand ``--input`` entries (paths, folders or glob patterns, ``~`` allowed) into file lists.

    A folder stands for the image files directly inside it (see :func:`image_extensions`); a
    pattern for the files it matches. Order follows the entries; each folder's or pattern's
    files are sorted; duplicates are dropped.

    Raises:
        FileNotFoundError: an entry matches no file, or a folder holds no image file (the
            message names it).
    """
    files: List[str] = []
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        if _GLOB_CHARS & set(expanded):
            matches = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
            if not matches:
                raise FileNotFoundError(f"--input pattern '{pattern}' matches no file")
        elif os.path.isdir(expanded):
            matches = _folder_images(expanded)
            if not matches:
                raise FileNotFoundError(f"--input folder '{pattern}' holds no image file (no file with an extension of "
                                        "a format Pillow reads, e.g. .jpg, .png)")
        elif os.path.isfile(expanded):
            matches = [expanded]
        else:
            raise FileNotFoundError(f"--input file '{pattern}' does not exist")
        files.extend(m for m in matches if m not in files)
    return files


def _is_folder_path(path: str) -> bool:
    """An existing folder, a path ending in a separator, or a name without extension."""
    return os.path.isdir(path) or path.endswith(("/", os.sep)) or not os.path.splitext(path)[1]


def image_output_paths(inputs: List[str], output: str) -> List[str]:
    """Where each input's drawing goes; creates the output folder.

    Raises:
        ValueError: several inputs but ``output`` is a file name, or two inputs share a file name
            (their drawings would overwrite each other in the folder).
    """
    if not _is_folder_path(output):
        if len(inputs) > 1:
            raise ValueError(f"--output '{output}' is a file name, but {len(inputs)} images were given: pass a folder")
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        return [output]
    os.makedirs(output, exist_ok=True)
    names = [os.path.basename(p) for p in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Several inputs are named {dupes}; their drawings would overwrite each other in '{output}'")
    return [os.path.join(output, n) for n in names]


def video_output_path(video_input: str, output: str) -> str:
    """The output video file: ``output`` itself, or ``<output>/<input stem>.mp4`` for a folder."""
    if _is_folder_path(output):
        stem = os.path.splitext(os.path.basename(video_input))[0]
        return os.path.join(output, stem + ".mp4")
    return output


def _describe(predictions: dict, demo: VisualizationDemo) -> str:
    thr = demo.confidence_threshold
    parts = []
    if "panoptic_seg" in predictions:
        parts.append(f"{len(predictions['panoptic_seg'][1])} panoptic segments")
    if "instances" in predictions:
        inst = predictions["instances"]
        shown = int((inst.scores >= thr).sum()) if inst.has("scores") else len(inst)
        parts.append(f"detected {len(inst)} instances ({shown} with score >= {thr})")
    if "sem_seg" in predictions:
        parts.append(f"semantic map with {predictions['sem_seg'].shape[0]} classes")
    return "; ".join(parts) or "finished"


def _with_output_suffix(path: str, kind: str) -> str:
    """``photo.jpg`` -> ``photo_<kind>.jpg``."""
    stem, ext = os.path.splitext(path)
    return f"{stem}_{kind}{ext}"


def run_on_images(demo: VisualizationDemo, inputs: List[str], output: Optional[str],
                  draw_all: bool = False) -> List[str]:
    """Draw every image; save to ``output`` (see :func:`image_output_paths`) or show in a window.

    An image that cannot be read (or whose drawing cannot be written) does not stop the run: an
    error line names the file and the reason, the other images are processed, and the failures
    are reported at the end.

    Args:
        draw_all: save one drawing per output present, as ``<name>_<output><ext>`` (needs ``output``).

    Returns:
        The files written (when every image succeeded).

    Raises:
        SystemExit: some images failed (exit status 1; the message lists each file and why). The
            drawings of the other images are written before.
    """
    out_paths = image_output_paths(inputs, output) if output else [None] * len(inputs)
    written: List[str] = []
    failed: List[Tuple[str, str]] = []
    for path, out_path in zip(tqdm.tqdm(inputs, desc="images", unit="image"), out_paths):
        try:
            img = read_image(path, format="BGR")
        except OSError as e:  # missing, unreadable or corrupt (ImageReadError): skip it, report it at the end
            logger.error(f"Skipping {path}: {e}")
            failed.append((path, str(e)))
            continue
        start = time.perf_counter()
        if draw_all:
            predictions = demo.predictor(img)
            drawings = demo.visualize_all(img, predictions)
            logger.info(f"{path}: {_describe(predictions, demo)} in {time.perf_counter() - start:.2f}s")
            for kind, vis in drawings.items():
                target = _with_output_suffix(out_path, kind)
                if _save(vis, target, path, failed):
                    written.append(target)
            continue
        predictions, vis = demo.run_on_image(img)
        logger.info(f"{path}: {_describe(predictions, demo)} in {time.perf_counter() - start:.2f}s")
        if out_path:
            if _save(vis, out_path, path, failed):
                written.append(out_path)
        else:
            cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_NORMAL)
            cv2.imshow(WINDOW_NAME, vis.get_image()[:, :, ::-1])
            if cv2.waitKey(0) == _ESC_KEY:
                break
    if output:
        where = written[0] if len(written) == 1 else os.path.abspath(output)
        print(f"Saved {len(written)} visualization(s) to {where}")
    if failed:
        lines = "\n".join(f"  {path}: {reason}" for path, reason in failed)
        raise SystemExit(f"{len(failed)} of {len(inputs)} image(s) could not be processed:\n{lines}")
    return written


def _save(vis, out_path: str, input_path: str, failed: List[Tuple[str, str]]) -> bool:
    """Save one drawing; on an OSError log it, add it to ``failed`` and return False."""
    try:
        vis.save(out_path)
    except OSError as e:
        logger.error(f"Cannot write the drawing of {input_path} to {out_path}: {e}")
        failed.append((input_path, f"cannot write {out_path}: {e}"))
        return False
    return True


def run_on_stream(demo: VisualizationDemo, source, output_path: Optional[str], name: str) -> Optional[str]:
    """Draw every frame of a video file or webcam; write a video (same size and frame rate) or
    show it in a window (Esc stops). Ctrl-C stops a stream cleanly, keeping what was written.

    Returns:
        The video file written, or None when shown in a window.
    """
    cap = open_video(source)
    info = get_video_info(cap)
    writer = VideoWriter(output_path, info.fps, (info.width, info.height)) if output_path else None
    start = time.perf_counter()
    frames = 0
    try:
        progress = tqdm.tqdm(demo.run_on_video(cap), total=info.num_frames or None, desc=name, unit="frame")
        for vis_frame in progress:
            frames += 1
            if writer is not None:
                writer.write(vis_frame)
            else:
                cv2.namedWindow(name, cv2.WINDOW_NORMAL)
                cv2.imshow(name, vis_frame)
                if cv2.waitKey(1) == _ESC_KEY:
                    break
    except KeyboardInterrupt:
        logger.info("Interrupted; closing the output")
    finally:
        cap.release()
        if writer is not None:
            writer.close()
        else:
            cv2.destroyAllWindows()
    elapsed = time.perf_counter() - start
    logger.info(f"{name}: {frames} frames in {elapsed:.2f}s ({frames / max(elapsed, 1e-9):.2f} frames/s)")
    if writer is not None:
        print(f"Saved a video of {writer.num_frames} frames ({info.width}x{info.height}, {info.fps:g} fps) to {writer.path}")
        return writer.path
    return None


def main(argv: Optional[List[str]] = None):
    """Run the demo with command-line arguments ``argv`` (default ``sys.argv[1:]``).

    Returns:
        The files written (list of image paths, or ``[video path]``).

    Raises:
        SystemExit: invalid command line (status 2, with a message saying what is wrong), or
            images that could not be processed (status 1, after the others were drawn; the
            message lists them).
    """
    parser = get_parser()
    args = parser.parse_args(argv)
    if bool(args.config_file) == bool(args.exported):
        parser.error("give exactly one of --config-file and --exported")
    if args.exported and args.opts:
        parser.error("--opts changes a config: an exported model has none (export again with the changes)")
    sources = [bool(args.input), bool(args.video_input), args.webcam]
    if sum(sources) != 1:
        parser.error("give exactly one of --input, --video-input and --webcam")
    if not 0.0 <= args.confidence_threshold <= 1.0:
        parser.error(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    if not args.output and not display_available():
        parser.error(
            "--output is required here: no display is available to show the results in a window "
            "(no DISPLAY, or OpenCV built without GUI support). Pass --output FILE_OR_FOLDER."
        )
    inputs: List[str] = []
    if args.input:
        try:
            inputs = expand_inputs(args.input)
        except FileNotFoundError as e:
            parser.error(str(e))
        if args.output and not _is_folder_path(args.output) and len(inputs) > 1:
            parser.error(f"--output '{args.output}' is a file name, but {len(inputs)} images matched: pass a folder")
    if args.draw == "all" and not (inputs and args.output):
        parser.error("--draw all writes one picture per output: it needs --input images and --output")
    if args.video_input and not os.path.isfile(args.video_input):
        parser.error(f"--video-input file '{args.video_input}' does not exist")
    if (args.video_input or args.webcam) and args.output and not _is_folder_path(args.output):
        ext = os.path.splitext(args.output)[1].lower()
        if ext not in SUPPORTED_VIDEO_EXTENSIONS:
            parser.error(f"--output '{args.output}': a video must end in one of {', '.join(SUPPORTED_VIDEO_EXTENSIONS)}")

    setup_logging()
    logger.info("Arguments: " + str(args))
    draw = "auto" if args.draw == "all" else args.draw
    if args.exported:
        from segcore.export import ExportedPredictor

        predictor = ExportedPredictor(args.exported)
        demo = VisualizationDemo(None, confidence_threshold=args.confidence_threshold, draw=draw,
                                 metadata=predictor.metadata, predictor=predictor)
    else:
        demo = VisualizationDemo(setup_cfg(args), confidence_threshold=args.confidence_threshold, draw=draw)

    if inputs:
        return run_on_images(demo, inputs, args.output, draw_all=args.draw == "all")
    if args.video_input:
        out = video_output_path(args.video_input, args.output) if args.output else None
        path = run_on_stream(demo, args.video_input, out, os.path.basename(args.video_input))
    else:
        out = None
        if args.output:
            out = os.path.join(args.output, _WEBCAM_VIDEO_NAME) if _is_folder_path(args.output) else args.output
        path = run_on_stream(demo, 0, out, "webcam")
    return [path] if path else []


if __name__ == "__main__":
    run_cli(main, prog="demo.py")  # a user's mistake (config, weights): one message, exit status 1
