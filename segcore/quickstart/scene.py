"""One quickstart image: stuff regions of real textures over a photograph, things pasted on top.

The in-memory :class:`SceneRecord` keeps every segment (id, class, exact visible mask), so
writers for other annotation formats (ADE20K semantic, COCO panoptic / instances) can all be
fed from the same record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from segcore.data.datasets.quickstart import IGNORE_LABEL

from .layout import LAYOUTS
from .shapes import shape_mask
from .sources import load_photo
from .styles import BACKGROUND_PHOTOS, style_for
from .textures import crop_resized, render_texture

__all__ = ["SceneParams", "Segment", "PastedObject", "SceneRecord", "render_scene"]


@dataclass(frozen=True)
class SceneParams:
    """Knobs of the scene generator (sizes in pixels).

    Attributes:
        size: longer image side.
        min_aspect: smallest shorter/longer side ratio; the ratio is drawn in [min_aspect, 1]
            and the orientation (landscape / portrait) at random.
        num_regions: (min, max) layout regions per image.
        photo_region_prob: chance that a region shows the unlabelled background photograph
            instead of a stuff texture (at least one region is always labelled).
        num_objects: (min, max) things pasted per image (fewer when they cannot be placed).
        object_scale: (min, max) size of a thing (the diameter of the disc of equal area) as a
            fraction of the shorter side, drawn log-uniformly.
        min_visible_fraction: a new thing is placed only where every earlier thing keeps at
            least this fraction of its in-image area visible.
        placement_tries: positions tried per thing before it is dropped.
        shading: amplitude of the linear light gradient across a thing (fraction of brightness).
    """

    size: int = 224
    min_aspect: float = 0.7
    num_regions: Tuple[int, int] = (2, 5)
    photo_region_prob: float = 0.25
    num_objects: Tuple[int, int] = (3, 7)
    object_scale: Tuple[float, float] = (0.15, 0.45)
    min_visible_fraction: float = 0.4
    placement_tries: int = 10
    shading: float = 0.12

    def __post_init__(self):
        if self.size < 32:
            raise ValueError(f"SceneParams.size must be >= 32 pixels, got {self.size}")
        if not 0 < self.min_aspect <= 1:
            raise ValueError(f"SceneParams.min_aspect must be in (0, 1], got {self.min_aspect}")
        for name in ("num_regions", "num_objects", "object_scale"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"SceneParams.{name} must be (min, max) with 0 <= min <= max, got {(low, high)}")
        if self.num_regions[0] < 1:
            raise ValueError(f"SceneParams.num_regions must start at >= 1, got {self.num_regions}")


@dataclass
class Segment:
    """One annotated segment of an image.

    Attributes:
        id: segment id, unique within the image (1, 2, ...; 0 is left for "void").
        category_id: contiguous class id (index into the category table).
        isthing: True for pasted objects, False for stuff regions.
        mask: bool (H, W), the pixels where the segment is visible.
    """

    id: int
    category_id: int
    isthing: bool
    mask: np.ndarray

    @property
    def area(self) -> int:
        """Number of visible pixels."""
        return int(self.mask.sum())

    @property
    def bbox(self) -> Tuple[int, int, int, int]:
        """Tight box of the visible pixels, (x, y, width, height) in pixels, as in COCO."""
        ys, xs = np.nonzero(self.mask)
        if len(xs) == 0:
            return (0, 0, 0, 0)
        return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


@dataclass
class PastedObject:
    """A thing as it was pasted (before later things covered parts of it).

    Attributes:
        category_id: contiguous class id.
        shape: key of ``shapes.SHAPES``.
        center: (x, y) in pixels; diameter in pixels; angle in radians; aspect: width stretch.
        mask: bool (H, W), every in-image pixel the object was painted on.
    """

    category_id: int
    shape: str
    center: Tuple[float, float]
    diameter: float
    angle: float
    aspect: float
    mask: np.ndarray


@dataclass
class SceneRecord:
    """A generated image with its annotations.

    Attributes:
        split: "training" or "validation" (ADE20K folder names).
        index: 1-based image number within the split.
        image: uint8 (H, W, 3) RGB.
        segments: visible segments; stuff first (by class id), then things in paste order.
        objects: the things in paste order (later ones on top).
        background: name of the bundled photograph under the unlabelled regions.
    """

    split: str
    index: int
    image: np.ndarray
    segments: List[Segment] = field(default_factory=list)
    objects: List[PastedObject] = field(default_factory=list)
    background: str = ""

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    def sem_seg(self, ignore_label: int = IGNORE_LABEL) -> np.ndarray:
        """The semantic label map.

        Returns:
            uint8 (H, W): the class id of every segment's pixels, ``ignore_label`` elsewhere.
        """
        label = np.full((self.height, self.width), ignore_label, dtype=np.uint8)
        for segment in self.segments:
            label[segment.mask] = segment.category_id
        return label


def _image_size(params: SceneParams, rng: np.random.Generator) -> Tuple[int, int]:
    short = int(round(params.size * rng.uniform(params.min_aspect, 1.0)))
    if rng.random() < 0.5:
        return short, params.size  # landscape: height, width
    return params.size, short


def _background(height: int, width: int, rng: np.random.Generator) -> Tuple[str, np.ndarray]:
    name = BACKGROUND_PHOTOS[int(rng.integers(len(BACKGROUND_PHOTOS)))]
    photo = crop_resized(load_photo(name), height, width, rng, crop_fraction=(0.5, 1.0))
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    return name, photo


def _paint_stuff(canvas, categories, params, rng) -> np.ndarray:
    """Paint the layout's regions; returns the int32 stuff label map (IGNORE_LABEL = photo)."""
    height, width = canvas.shape[:2]
    stuff_ids = [c["id"] for c in categories if not c["isthing"]]
    labels = np.full((height, width), IGNORE_LABEL, dtype=np.int32)
    if not stuff_ids:
        return labels
    layout_name = sorted(LAYOUTS)[int(rng.integers(len(LAYOUTS)))]
    num_regions = int(rng.integers(params.num_regions[0], params.num_regions[1] + 1))
    regions = LAYOUTS[layout_name](height, width, num_regions, rng)
    classes = rng.choice(stuff_ids, size=num_regions, replace=num_regions > len(stuff_ids))
    is_photo = rng.random(num_regions) < params.photo_region_prob
    areas = np.bincount(regions.ravel(), minlength=num_regions)
    if np.all(is_photo | (areas == 0)):
        is_photo[int(np.argmax(areas))] = False
    for region in range(num_regions):
        if is_photo[region] or areas[region] == 0:
            continue
        category = categories[int(classes[region])]
        texture = render_texture(style_for(category).texture, height, width, rng)
        inside = regions == region
        canvas[inside] = texture[inside]
        labels[inside] = category["id"]
    return labels


def _paste_things(canvas, categories, params, rng) -> List[PastedObject]:
    """Paste things in order, each on top of the earlier ones; returns them in paste order."""
    height, width = canvas.shape[:2]
    thing_ids = [c["id"] for c in categories if c["isthing"]]
    if not thing_ids:
        return []
    short = min(height, width)
    num_objects = int(rng.integers(params.num_objects[0], params.num_objects[1] + 1))
    log_low, log_high = math.log(params.object_scale[0]), math.log(params.object_scale[1])
    objects: List[PastedObject] = []
    visible: List[np.ndarray] = []
    for _ in range(num_objects):
        category = categories[int(rng.choice(thing_ids))]
        style = style_for(category)
        diameter = short * math.exp(rng.uniform(log_low, log_high))
        angle = rng.uniform(0.0, 2 * math.pi)
        aspect = math.exp(rng.uniform(-0.2, 0.2))
        margin = 0.25 * diameter  # at most about a quarter of a thing leaves the image
        placed = None
        for _ in range(params.placement_tries):
            center = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
            mask = shape_mask(style.shape, height, width, center, diameter, angle, aspect)
            if not mask.any():
                continue
            if all(
                (vis & ~mask).sum() >= params.min_visible_fraction * obj.mask.sum()
                for vis, obj in zip(visible, objects)
            ):
                placed = (center, mask)
                break
        if placed is None:
            continue
        center, mask = placed
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        texture = render_texture(style.texture, int(y1 - y0), int(x1 - x0), rng)
        light = rng.uniform(0.0, 2 * math.pi)
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        ramp = ((gx - center[0]) * math.cos(light) + (gy - center[1]) * math.sin(light)) / (diameter / 2)
        texture *= (1.0 + params.shading * np.clip(ramp, -1.0, 1.0))[..., None]
        local = mask[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1][local] = np.clip(texture[local], 0.0, 255.0)
        visible = [vis & ~mask for vis in visible]
        visible.append(mask.copy())
        objects.append(PastedObject(category["id"], style.shape, center, diameter, angle, aspect, mask))
    return objects


def render_scene(
    categories: Sequence[dict],
    params: SceneParams,
    rng: np.random.Generator,
    split: str = "training",
    index: int = 1,
) -> SceneRecord:
    """Generate one image and its segments.

    Steps: a random window of a bundled photograph fills the image; a layout (wavy bands or
    warped Voronoi cells) splits it into a few regions, each painted with a stuff texture or
    left as the (unlabelled) photograph; then things of random class, size (about 3x range),
    rotation and position are pasted one after another, later ones occluding earlier ones.
    Masks are rasterised without anti-aliasing, so they are exact.

    Args:
        categories: the category table (``load_quickstart_categories()``); ids are 0..K-1.
        params: the generator knobs.
        rng: the only source of randomness (same state -> same record).
        split, index: stored in the record (file naming).

    Returns:
        a :class:`SceneRecord`; ``record.sem_seg()`` is its uint8 label map.

    Raises:
        KeyError: if a category has no style in ``styles.CLASS_STYLES``.
    """
    height, width = _image_size(params, rng)
    background, canvas = _background(height, width, rng)
    stuff_labels = _paint_stuff(canvas, categories, params, rng)
    objects = _paste_things(canvas, categories, params, rng)

    covered = np.zeros((height, width), dtype=bool)
    thing_masks: List[np.ndarray] = []
    for obj in reversed(objects):
        thing_masks.append(obj.mask & ~covered)
        covered |= obj.mask
    thing_masks.reverse()

    segments: List[Segment] = []
    for category_id in sorted(int(c) for c in np.unique(stuff_labels) if c != IGNORE_LABEL):
        mask = (stuff_labels == category_id) & ~covered
        if mask.any():
            segments.append(Segment(len(segments) + 1, category_id, False, mask))
    for obj, mask in zip(objects, thing_masks):
        if mask.any():
            segments.append(Segment(len(segments) + 1, obj.category_id, True, mask))

    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return SceneRecord(split, index, image, segments, objects, background)
