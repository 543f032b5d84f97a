"""Reading frames from video files or webcams, and writing videos, with OpenCV.

Frames are (H, W, 3) uint8 arrays in BGR order (OpenCV's), as ``cv2.VideoCapture`` returns them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple, Union

import cv2
import numpy as np

__all__ = ["SUPPORTED_VIDEO_EXTENSIONS", "VideoInfo", "VideoWriter", "get_video_info", "iter_frames", "open_video"]

logger = logging.getLogger(__name__)

#: Frame rate assumed when the source does not report one (webcams often do not).
DEFAULT_FPS = 30.0

# FourCC codes to try per container, in order. The OpenCV wheels ship FFmpeg without the
# (GPL) x264 encoder, so MPEG-4 part 2 ("mp4v") is the portable choice for .mp4.
_CODECS = {
    ".mp4": ("mp4v", "avc1"),
    ".m4v": ("mp4v",),
    ".mov": ("mp4v",),
    ".mkv": ("XVID", "mp4v", "MJPG"),
    ".avi": ("MJPG", "XVID"),
}
#: File extensions :class:`VideoWriter` can write.
SUPPORTED_VIDEO_EXTENSIONS = tuple(_CODECS)
# Container tried when none of the codecs for the requested extension can be opened.
_FALLBACK_EXT = ".mkv"


@dataclass(frozen=True)
class VideoInfo:
    """Properties of an opened video source.

    Attributes:
        width, height: frame size in pixels.
        fps: frames per second (DEFAULT_FPS when the source reports none).
        num_frames: frame count reported by the container, 0 when unknown (e.g. a webcam).
    """

    width: int
    height: int
    fps: float
    num_frames: int


def open_video(source: Union[str, int]) -> cv2.VideoCapture:
    """Open a video file, or a webcam given by its index (``0`` is the default camera).

    Raises:
        FileNotFoundError: ``source`` is a path and no such file exists.
        OSError: OpenCV cannot open it (no decoder for the format, not a video, no such camera).
    """
    if isinstance(source, int):
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            raise OSError(f"Cannot open webcam {source}: no camera with that index is available")
        return cap
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video file not found: {path}")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise OSError(f"Cannot open video {path}: it is not a video, or OpenCV has no decoder for its format")
    return cap


def get_video_info(cap: cv2.VideoCapture) -> VideoInfo:
    """Width, height, frame rate and frame count of an opened ``cv2.VideoCapture``."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return VideoInfo(
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(fps) if fps and fps > 0 and np.isfinite(fps) else DEFAULT_FPS,
        num_frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
    )


def iter_frames(video: Union[str, int, cv2.VideoCapture], max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """Yield the frames of a video until it ends (or ``max_frames`` were read).

    Args:
        video: a path, a webcam index, or an opened ``cv2.VideoCapture`` (left open; a source
            opened here is released when the generator finishes or is closed).
        max_frames: stop after this many frames (None: all).

    Yields:
        (H, W, 3) uint8 BGR frames.

    Raises:
        FileNotFoundError, OSError: as :func:`open_video`.
    """
    own = not isinstance(video, cv2.VideoCapture)
    cap = open_video(video) if own else video
    try:
        count = 0
        while cap.isOpened() and (max_frames is None or count < max_frames):
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
    finally:
        if own:
            cap.release()


class VideoWriter:
    """Write BGR frames to a video file; use as a context manager or call :meth:`close`.

    The codec is chosen from the extension (.mp4/.m4v/.mov: mp4v; .mkv: XVID, mp4v, MJPG;
    .avi: MJPG, XVID), trying each until OpenCV opens one. If none works and ``fallback`` is
    true, the same name with the ``.mkv`` extension is tried; :attr:`path` is the file actually
    written. Missing parent folders are created.

    Args:
        path: output file.
        fps: frames per second (> 0).
        frame_size: (width, height) in pixels of every frame.
        fallback: allow switching to ``.mkv`` when the requested container cannot be written.

    Raises:
        ValueError: unsupported extension, non-positive fps or frame size.
        OSError: no codec could be opened for the file (e.g. the folder is not writable).
    """

    def __init__(self, path: str, fps: float, frame_size: Tuple[int, int], *, fallback: bool = True):
        path = os.fspath(path)
        ext = os.path.splitext(path)[1].lower()
        if ext not in _CODECS:
            raise ValueError(f"Cannot write video {path}: extension {ext!r} is not one of {sorted(_CODECS)}")
        width, height = (int(v) for v in frame_size)
        if width <= 0 or height <= 0:
            raise ValueError(f"Cannot write video {path}: frame size must be positive, got {frame_size}")
        if not fps or fps <= 0:
            raise ValueError(f"Cannot write video {path}: fps must be positive, got {fps}")
        self.frame_size = (width, height)
        self.fps = float(fps)
        self.num_frames = 0
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        candidates = [(path, c) for c in _CODECS[ext]]
        if fallback and ext != _FALLBACK_EXT:
            alt = os.path.splitext(path)[0] + _FALLBACK_EXT
            candidates += [(alt, c) for c in _CODECS[_FALLBACK_EXT]]
        self._writer = None
        tried = []
        for candidate, codec in candidates:
            writer = cv2.VideoWriter(candidate, cv2.VideoWriter_fourcc(*codec), self.fps, self.frame_size, True)
            if writer.isOpened():
                self._writer, self.path, self.codec = writer, candidate, codec
                break
            writer.release()
            tried.append(f"{os.path.basename(candidate)} ({codec})")
        if self._writer is None:
            raise OSError(
                f"Cannot write video {path}: OpenCV could not open a writer for any of {', '.join(tried)}; "
                f"check that {parent} is writable"
            )
        if self.path != path:
            logger.warning(f"Cannot write {path} with OpenCV's codecs here; writing {self.path} instead")

    def write(self, frame: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 BGR frame.

        Raises:
            ValueError: the frame's size or type differs from the writer's (OpenCV would drop it
                silently).
            RuntimeError: the writer is closed.
        """
        if self._writer is None:
            raise RuntimeError(f"VideoWriter for {self.path} is closed")
        w, h = self.frame_size
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"Frame {self.num_frames} for {self.path} is {frame.dtype} {tuple(frame.shape)}, "
                f"expected uint8 ({h}, {w}, 3)"
            )
        self._writer.write(np.ascontiguousarray(frame))
        self.num_frames += 1

    def close(self) -> None:
        """Finish the file.

        Raises:
            OSError: frames were written but the file is missing or empty afterwards.
        """
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.num_frames and (not os.path.isfile(self.path) or os.path.getsize(self.path) == 0):
            raise OSError(f"Writing video {self.path} failed: the file is missing or empty after {self.num_frames} frames")

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
