"""Drawing a video model's output: each predicted instance in one colour in every frame, labelled
with its class and score (the original ``demo_video/visualizer.py``'s ``TrackVisualizer``)."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch

from segcore.utils.colormap import random_colors
from segcore.utils.visualizer import ColorMode, VisImage, Visualizer, _create_text_labels

__all__ = ["draw_video_predictions", "track_colors"]

#: opacity of the instance masks
MASK_ALPHA = 0.5


def track_colors(num_tracks: int, seed: int = 0) -> List[np.ndarray]:
    """One palette colour (RGB 0..255) per track, distinct for up to the palette's size, the same for
    the same ``seed``."""
    return random_colors(num_tracks, rgb=True, rng=np.random.default_rng(seed))


def draw_video_predictions(frames_rgb: Sequence[np.ndarray], predictions: dict, metadata=None,
                           confidence_threshold: float = 0.5, seed: int = 0) -> List[VisImage]:
    """Draw the instances of a video output on its frames.

    Args:
        frames_rgb: T uint8 (H, W, 3) RGB frames (the output's ``image_size``).
        predictions: the video output (``pred_scores``, ``pred_labels``, ``pred_masks`` [bool (T, H, W)]).
        metadata: the dataset metadata (``thing_classes`` name the labels).
        confidence_threshold: instances with a lower score are not drawn.
        seed: seed of the track colours.

    Returns:
        T drawings; instance i (in the output's order) has the same colour and label "[i] class
        score%" in every frame it appears in.

    Raises:
        ValueError: the masks do not have T frames of the frames' size.
    """
    scores = list(predictions["pred_scores"])
    keep = [i for i, s in enumerate(scores) if s >= confidence_threshold]
    labels = _create_text_labels([predictions["pred_labels"][i] for i in keep], [scores[i] for i in keep],
                                 getattr(metadata, "thing_classes", None) if metadata is not None else None) or []
    labels = [f"[{i}] {label}" for i, label in zip(keep, labels)]
    colors = track_colors(len(scores), seed)
    tubes = [torch.as_tensor(predictions["pred_masks"][i]).cpu().numpy().astype(bool) for i in keep]
    for tube in tubes:
        if tube.shape[0] != len(frames_rgb) or tube.shape[1:] != frames_rgb[0].shape[:2]:
            raise ValueError(f"a mask tube of shape {tube.shape} does not fit {len(frames_rgb)} frames of "
                             f"{frames_rgb[0].shape[:2]}")
    drawings = []
    for t, frame in enumerate(frames_rgb):
        vis = Visualizer(frame, metadata, instance_mode=ColorMode.IMAGE, seed=seed)
        present = [j for j, tube in enumerate(tubes) if tube[t].any()]
        vis.overlay_instances(masks=[tubes[j][t] for j in present], labels=[labels[j] for j in present],
                              assigned_colors=[colors[keep[j]] for j in present], alpha=MASK_ALPHA)
        drawings.append(vis.output)
    return drawings


