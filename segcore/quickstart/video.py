"""One quickstart video: a still background of real textures, things that move, scale, turn and
occlude each other over a few frames, with the exact visible mask of every thing in every frame.

The background is made as a quickstart image's (:mod:`.scene`: a window of a bundled photograph,
stuff regions painted with their textures) and stays still; every thing (a class of the
quickstart table, with its shape and texture, :mod:`.styles`) gets a start position, size and
angle, and per frame a constant velocity (bouncing off the image border), a scale factor and a
rotation speed. Things are drawn in a fixed depth order, so a thing passing behind a later one is
partly or wholly hidden in some frames (its track then has no mask there, as YouTube-VIS marks an
absent object). Masks are rasterised without anti-aliasing (:func:`.shapes.shape_mask`), so they
are exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .scene import _background, _paint_stuff
from .shapes import shape_mask
from .styles import style_for
from .textures import render_texture

__all__ = ["Track", "VideoParams", "VideoRecord", "render_video"]


@dataclass(frozen=True)
class VideoParams:
    """Knobs of the video generator (sizes in pixels, motions per frame).

    Attributes:
        size: longer frame side.
        min_aspect: smallest shorter / longer side ratio (drawn in [min_aspect, 1], landscape or portrait).
        num_frames: frames per video.
        num_regions: (min, max) stuff regions of the background.
        photo_region_prob: chance that a background region shows the unlabelled photograph.
        num_objects: (min, max) things per video.
        object_scale: (min, max) size of a thing in the first frame (diameter of the disc of equal
            area) as a fraction of the shorter side, drawn log-uniformly.
        max_speed: the largest displacement per frame, as a fraction of the shorter side.
        max_scale_change: a thing's size is multiplied per frame by exp(u), |u| <= this.
        max_turn: a thing turns by at most this many radians per frame.
    """

    size: int = 128
    min_aspect: float = 0.75
    num_frames: int = 5
    num_regions: Tuple[int, int] = (2, 4)
    photo_region_prob: float = 0.25
    num_objects: Tuple[int, int] = (2, 4)
    object_scale: Tuple[float, float] = (0.22, 0.45)
    max_speed: float = 0.07
    max_scale_change: float = 0.08
    max_turn: float = 0.2

    def __post_init__(self):
        if self.size < 32:
            raise ValueError(f"VideoParams.size must be >= 32 pixels, got {self.size}")
        if self.num_frames < 1:
            raise ValueError(f"VideoParams.num_frames must be >= 1, got {self.num_frames}")
        if not 0 < self.min_aspect <= 1:
            raise ValueError(f"VideoParams.min_aspect must be in (0, 1], got {self.min_aspect}")
        for name in ("num_regions", "num_objects", "object_scale"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"VideoParams.{name} must be (min, max) with 0 <= min <= max, got {(low, high)}")
        if self.num_regions[0] < 1:
            raise ValueError(f"VideoParams.num_regions must start at >= 1, got {self.num_regions}")

    @property
    def scene_params(self):
        """The image generator's knobs for the background (:class:`.scene.SceneParams`)."""
        from .scene import SceneParams

        return SceneParams(size=self.size, min_aspect=self.min_aspect, num_regions=self.num_regions,
                           photo_region_prob=self.photo_region_prob)


@dataclass
class Track:
    """One thing over a video.

    Attributes:
        id: track id, unique within the video (1, 2, ...).
        category_id: contiguous class id of the quickstart table.
        masks: per frame a bool (H, W) visible mask, or None where the thing is not visible
            (hidden behind later things or outside the frame).
    """

    id: int
    category_id: int
    masks: List[Optional[np.ndarray]]

    def present(self) -> List[bool]:
        """Per frame: whether the thing is visible."""
        return [m is not None for m in self.masks]


@dataclass
class VideoRecord:
    """A generated video.

    Attributes:
        split: "train" or "valid" (the YouTube-VIS folder names). index: 1-based video number.
        frames: T uint8 (H, W, 3) RGB frames. tracks: the things visible in at least one frame.
    """

    split: str
    index: int
    frames: List[np.ndarray]
    tracks: List[Track] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])

    @property
    def name(self) -> str:
        """The video's folder name, e.g. ``video_0001``."""
        return f"video_{self.index:04d}"


@dataclass
class _Motion:
    """A thing's path: position, size and angle at frame t, bouncing off the border."""

    shape: str
    center: Tuple[float, float]
    velocity: Tuple[float, float]
    diameter: float
    scale: float
    angle: float
    turn: float
    aspect: float

    def at(self, t: int, height: int, width: int) -> Tuple[Tuple[float, float], float, float]:
        def bounce(p0: float, v: float, limit: float) -> float:
            p, period = p0 + v * t, 2 * limit  # reflect at 0 and limit
            p = p % period
            return p if p <= limit else period - p

        center = (bounce(self.center[0], self.velocity[0], width), bounce(self.center[1], self.velocity[1], height))
        return center, self.diameter * self.scale ** t, self.angle + self.turn * t


def _frame_size(params: VideoParams, rng: np.random.Generator) -> Tuple[int, int]:
    short = int(round(params.size * rng.uniform(params.min_aspect, 1.0)))
    return (short, params.size) if rng.random() < 0.5 else (params.size, short)


def render_video(categories: Sequence[dict], params: VideoParams, rng: np.random.Generator, split: str = "train",
                 index: int = 1) -> VideoRecord:
    """Generate one video and its tracks (see the module docstring).

    Args:
        categories: the category table (``load_quickstart_categories()``); the things are drawn.
        params: the generator knobs. rng: the only source of randomness (same state -> same video).
        split, index: stored in the record (file naming).

    Returns:
        a :class:`VideoRecord`; tracks in depth order (later ones in front), each visible in at least
        one frame.

    Raises:
        KeyError: a category has no style in ``styles.CLASS_STYLES``.
    """
    height, width = _frame_size(params, rng)
    _, background = _background(height, width, rng)
    background = background.astype(np.float32)
    _paint_stuff(background, categories, params.scene_params, rng)
    thing_ids = [c["id"] for c in categories if c["isthing"]]
    short = min(height, width)
    num_objects = int(rng.integers(params.num_objects[0], params.num_objects[1] + 1)) if thing_ids else 0
    log_low, log_high = math.log(params.object_scale[0]), math.log(params.object_scale[1])
    things = []
    for _ in range(num_objects):
        category = categories[int(rng.choice(thing_ids))]
        style = style_for(category)
        diameter = short * math.exp(rng.uniform(log_low, log_high))
        speed = rng.uniform(0.0, params.max_speed) * short
        heading = rng.uniform(0.0, 2 * math.pi)
        margin = 0.3 * diameter
        motion = _Motion(style.shape, (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)),
                         (speed * math.cos(heading), speed * math.sin(heading)), diameter,
                         math.exp(rng.uniform(-params.max_scale_change, params.max_scale_change)),
                         rng.uniform(0.0, 2 * math.pi), rng.uniform(-params.max_turn, params.max_turn),
                         math.exp(rng.uniform(-0.2, 0.2)))
        largest = diameter * max(motion.scale ** (params.num_frames - 1), 1.0)
        patch = int(math.ceil(1.5 * largest)) + 4  # the texture travels with the thing
        things.append((category["id"], motion, render_texture(style.texture, patch, patch, rng)))

    frames: List[np.ndarray] = []
    painted: List[List[np.ndarray]] = [[] for _ in things]
    for t in range(params.num_frames):
        canvas = background.copy()
        for k, (_, motion, texture) in enumerate(things):
            center, diameter, angle = motion.at(t, height, width)
            mask = shape_mask(motion.shape, height, width, center, diameter, angle, motion.aspect)
            ys, xs = np.nonzero(mask)
            half = texture.shape[0] // 2
            ty = np.clip(np.round(ys + 0.5 - center[1]).astype(int) + half, 0, texture.shape[0] - 1)
            tx = np.clip(np.round(xs + 0.5 - center[0]).astype(int) + half, 0, texture.shape[1] - 1)
            canvas[ys, xs] = texture[ty, tx]
            painted[k].append(mask)
        frames.append(np.clip(np.round(canvas), 0, 255).astype(np.uint8))

    tracks: List[Track] = []
    for k, (category_id, _, _) in enumerate(things):
        masks: List[Optional[np.ndarray]] = []
        for t in range(params.num_frames):
            visible = painted[k][t].copy()
            for later in painted[k + 1:]:
                visible &= ~later[t]
            masks.append(visible if visible.any() else None)
        if any(m is not None for m in masks):
            tracks.append(Track(len(tracks) + 1, int(category_id), masks))
    return VideoRecord(split, index, frames, tracks)
