"""Running a video model on the frames of one video (the original ``demo_video/predictor.py``'s
``VideoPredictor``)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from segcore.engine import DefaultPredictor
from segcore.utils.precision import inference_precision

from .inference import WindowedVideoInference

__all__ = ["VideoPredictor"]


class VideoPredictor(DefaultPredictor):
    """A video model with its weights, run on a list of frames.

    As :class:`segcore.engine.DefaultPredictor` (which it extends: the model is built, every weight
    must load, unless ``MODEL.ALLOW_PARTIAL_WEIGHTS``; eval mode, ``TEST.PRECISION``), for a video:
    each BGR frame is converted to ``INPUT.FORMAT`` and resized with ``ResizeShortestEdge(
    INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST)``, and the model sees all of them as one clip, or
    window by window (:class:`~mask2former_video.inference.WindowedVideoInference`) when ``window``
    is given.

    Args:
        cfg: the config of a video model.
        window: frames per window (None: the whole video is one clip, as the original).
        overlap: frames shared by consecutive windows.

    ``__call__(frames)``: T uint8 (H, W, 3) BGR arrays of the same size -> the model's video output
    ``{"image_size": (H, W), "pred_scores", "pred_labels", "pred_masks": [bool (T, H, W)]}``.

    Raises:
        IncompleteWeightsError, NonFiniteWeightsError, CheckpointReadError: the weights cannot be used.
        ValueError: (call) no frame, frames of different sizes or not (H, W, 3) uint8; bad window arguments.
    """

    def __init__(self, cfg, *, window: Optional[int] = None, overlap: int = 1):
        super().__init__(cfg)
        self.windowed = None if window is None else WindowedVideoInference(self.model, window=window, overlap=overlap)

    def __call__(self, frames: Sequence[np.ndarray]) -> dict:
        if len(frames) == 0:
            raise ValueError("VideoPredictor: the video has no frame")
        shapes = {tuple(getattr(f, "shape", ())) for f in frames}
        if len(shapes) != 1 or any(getattr(f, "dtype", None) != np.uint8 for f in frames):
            raise ValueError(f"VideoPredictor expects uint8 (H, W, 3) BGR frames of one size, got shapes {sorted(shapes)}")
        height, width = frames[0].shape[:2]
        if frames[0].ndim != 3 or frames[0].shape[2] != 3:
            raise ValueError(f"VideoPredictor expects (H, W, 3) BGR frames, got shape {frames[0].shape}")
        with torch.inference_mode(), inference_precision(self.precision, self.device_type):
            transform = self.aug.get_transform(frames[0]) if self.aug is not None else None
            images = []
            for frame in frames:
                if self.input_format == "RGB":
                    frame = frame[:, :, ::-1]
                if transform is not None:
                    frame = transform.apply_image(frame)
                images.append(torch.as_tensor(np.ascontiguousarray(frame.transpose(2, 0, 1))).to(self.cfg.MODEL.DEVICE))
            video = {"image": images, "height": height, "width": width}
            if self.windowed is not None:
                return self.windowed(video)
            return self.model([video])
