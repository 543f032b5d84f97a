"""Geometric augmentations (Detectron2's ``detectron2/data/transforms/augmentation_impl.py``).

``ResizeShortestEdge``, ``RandomFlip``, ``RandomCrop``, ``RandomCrop_CategoryAreaConstraint``,
``RandomApply`` and the large-scale-jitter pair ``ResizeScale`` + ``FixedSizeCrop`` behave as in
Detectron2 (same parameters, same random draws from ``numpy.random``).
"""
from __future__ import annotations

import sys
from typing import Sequence, Tuple, Union

import numpy as np
from fvcore.transforms.transform import HFlipTransform, NoOpTransform, Transform, TransformList, VFlipTransform
from PIL import Image

from .augmentation import AugInput, Augmentation, _transform_to_aug
from .transform import CropTransform, PadTransform, ResizeTransform

__all__ = [
    "FixedSizeCrop",
    "RandomApply",
    "RandomCrop",
    "RandomCrop_CategoryAreaConstraint",
    "RandomFlip",
    "Resize",
    "ResizeScale",
    "ResizeShortestEdge",
]


class RandomApply(Augmentation):
    """Apply an augmentation (or a fixed transform) with probability ``prob`` (Detectron2 ``RandomApply``).

    One uniform number is drawn from ``numpy.random`` per call; the wrapped augmentation runs
    when it is below ``prob``, otherwise the input is left as it is (a ``NoOpTransform``).
    """

    def __init__(self, tfm_or_aug: Union[Augmentation, Transform], prob: float = 0.5):
        """
        Args:
            tfm_or_aug: the augmentation or transform to apply; an ``AugmentationList`` applies
                several together.
            prob: probability of applying it, in [0, 1].

        Raises:
            ValueError: ``prob`` outside [0, 1].
            TypeError: ``tfm_or_aug`` is neither an Augmentation nor a Transform.
        """
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomApply: prob must be in [0, 1]; got {prob}")
        self.aug = _transform_to_aug(tfm_or_aug)
        self.prob = prob

    def get_transform(self, *args) -> Transform:
        do = self._rand_range() < self.prob
        if do:
            return self.aug.get_transform(*args)
        return NoOpTransform()

    def __call__(self, aug_input: AugInput) -> Transform:
        do = self._rand_range() < self.prob
        if do:
            return self.aug(aug_input)
        return NoOpTransform()

    def __repr__(self) -> str:
        return f"RandomApply({self.aug!r}, prob={self.prob})"

    __str__ = __repr__


class RandomFlip(Augmentation):
    """Flip the image (and its label map) horizontally or vertically with probability ``prob``."""

    def __init__(self, prob: float = 0.5, *, horizontal: bool = True, vertical: bool = False):
        """
        Args:
            prob: probability of flipping, in [0, 1].
            horizontal: flip left-right.
            vertical: flip top-bottom (exactly one of the two must be True).

        Raises:
            ValueError: both or neither direction chosen, or ``prob`` outside [0, 1].
        """
        super().__init__()
        if horizontal and vertical:
            raise ValueError("RandomFlip cannot flip both horizontally and vertically; use two RandomFlip instead")
        if not horizontal and not vertical:
            raise ValueError("RandomFlip needs horizontal=True or vertical=True")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomFlip: prob must be in [0, 1]; got {prob}")
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        do = self._rand_range() < self.prob
        if do:
            return HFlipTransform(w) if self.horizontal else VFlipTransform(h)
        return NoOpTransform()


class Resize(Augmentation):
    """Resize to a fixed (height, width) in pixels."""

    def __init__(self, shape: Union[int, Tuple[int, int]], interp: int = Image.Resampling.BILINEAR):
        if isinstance(shape, int):
            shape = (shape, shape)
        shape = tuple(shape)
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        return ResizeTransform(image.shape[0], image.shape[1], self.shape[0], self.shape[1], self.interp)


class ResizeShortestEdge(Augmentation):
    """Resize so the shorter edge has a sampled length, capping the longer edge at ``max_size``.

    As in Detectron2: the shorter edge becomes ``size`` pixels; if the longer edge would then
    exceed ``max_size``, both are scaled down so it equals ``max_size``; sizes are rounded to the
    nearest integer. A sampled size of 0 leaves the image unchanged.
    """

    def __init__(
        self,
        short_edge_length: Union[int, Sequence[int]],
        max_size: int = sys.maxsize,
        sample_style: str = "range",
        interp: int = Image.Resampling.BILINEAR,
    ):
        """
        Args:
            short_edge_length: with ``sample_style="range"``, [min, max] (pixels) to draw the
                shorter edge from uniformly (integers, both ends included); with "choice", the
                lengths to choose from. An int means exactly that length.
            max_size: the largest allowed longer edge in pixels.
            sample_style: "range" or "choice".
            interp: PIL resampling filter for the image (label maps always use nearest).

        Raises:
            ValueError: an unknown sample_style, or "range" without exactly two values.
        """
        super().__init__()
        if sample_style not in ("range", "choice"):
            raise ValueError(f"ResizeShortestEdge: sample_style must be 'range' or 'choice'; got '{sample_style}'")
        self.is_range = sample_style == "range"
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        short_edge_length = tuple(int(s) for s in short_edge_length)
        if self.is_range and len(short_edge_length) != 2:
            raise ValueError(
                f"ResizeShortestEdge: short_edge_length must be two values [min, max] with sample_style 'range'; "
                f"got {short_edge_length}"
            )
        if len(short_edge_length) == 0:
            raise ValueError("ResizeShortestEdge: short_edge_length is empty")
        self._init(locals())

    @staticmethod
    def get_output_shape(oldh: int, oldw: int, short_edge_length: int, max_size: int) -> Tuple[int, int]:
        """The (new_h, new_w) in pixels for an ``oldh`` x ``oldw`` input (Detectron2's rule; each side
        at least 1 pixel, so an extreme aspect ratio such as 1 x 4000 does not round to 0)."""
        size = short_edge_length * 1.0
        scale = size / min(oldh, oldw)
        if oldh < oldw:
            newh, neww = size, scale * oldw
        else:
            newh, neww = scale * oldh, size
        if max(newh, neww) > max_size:
            scale = max_size * 1.0 / max(newh, neww)
            newh = newh * scale
            neww = neww * scale
        return max(1, int(newh + 0.5)), max(1, int(neww + 0.5))

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if self.is_range:
            size = np.random.randint(self.short_edge_length[0], self.short_edge_length[1] + 1)
        else:
            size = np.random.choice(self.short_edge_length)
        if size == 0:
            return NoOpTransform()
        newh, neww = ResizeShortestEdge.get_output_shape(h, w, size, self.max_size)
        return ResizeTransform(h, w, newh, neww, self.interp)


class ResizeScale(Augmentation):
    """Resize to fit a randomly scaled target box, keeping the aspect ratio (Detectron2 ``ResizeScale``).

    The resize half of large-scale jitter (Ghiasi et al., "Simple Copy-Paste is a Strong Data
    Augmentation Method for Instance Segmentation", CVPR 2021, Sec. 3; Google's
    ``resize_and_crop``), used with :class:`FixedSizeCrop` by Mask2Former's LSJ mappers.

    One scale ``s`` is drawn with ``np.random.uniform(min_scale, max_scale)``; an (H, W) input is
    then resized by ``r = min(target_height * s / H, target_width * s / W)`` to
    ``(round(H * r), round(W * r))`` pixels (at least 1 each), so it fits inside the
    ``(target_height * s, target_width * s)`` box and touches it on one side. Images use
    ``interp``; label maps nearest neighbour; boxes and polygons are scaled.
    """

    def __init__(
        self,
        min_scale: float,
        max_scale: float,
        target_height: int,
        target_width: int,
        interp: int = Image.Resampling.BILINEAR,
    ):
        """
        Args:
            min_scale, max_scale: the range of the scale factor applied to the target size,
                0 < min_scale <= max_scale (e.g. 0.1 and 2.0 for LSJ).
            target_height, target_width: the target box in pixels before scaling (e.g. 1024).
            interp: PIL resampling filter for the image (label maps always use nearest).

        Raises:
            ValueError: a non-positive scale or target size, or min_scale > max_scale.
        """
        super().__init__()
        if not 0 < min_scale <= max_scale:
            raise ValueError(
                f"ResizeScale: need 0 < min_scale <= max_scale; got min_scale={min_scale}, max_scale={max_scale}"
            )
        if target_height <= 0 or target_width <= 0:
            raise ValueError(
                f"ResizeScale: the target size must be positive; got {target_height}x{target_width} pixels"
            )
        self._init(locals())

    def _get_resize(self, image: np.ndarray, scale: float) -> Transform:
        """The ResizeTransform for ``image`` (H, W[, C]) at the given scale of the target size."""
        h, w = image.shape[:2]
        box_h, box_w = self.target_height * scale, self.target_width * scale
        ratio = min(box_h / h, box_w / w)
        new_h, new_w = (max(1, int(v)) for v in np.round(np.multiply((h, w), ratio)))
        return ResizeTransform(h, w, new_h, new_w, self.interp)

    def get_transform(self, image: np.ndarray) -> Transform:
        scale = np.random.uniform(self.min_scale, self.max_scale)
        return self._get_resize(image, scale)


class FixedSizeCrop(Augmentation):
    """Crop and pad to exactly ``crop_size`` (Detectron2 ``FixedSizeCrop``).

    The crop half of large-scale jitter (see :class:`ResizeScale`). For an (H, W) input and
    ``crop_size`` = (ch, cw) in pixels:

    - crop: a window of ``(min(H, ch), min(W, cw))`` at offset ``round(u * (max(H - ch, 0),
      max(W - cw, 0)))``, with ONE ``u = np.random.uniform(0, 1)`` shared by both axes (as in
      Detectron2 and Google's ``resize_and_crop``);
    - pad (when ``pad``): on the right and bottom up to (ch, cw), the image with ``pad_value``
      and label maps with ``seg_pad_value``.

    The transform is a ``TransformList([CropTransform, PadTransform])`` (the crop only when
    ``pad`` is False, leaving inputs smaller than ``crop_size`` smaller). Boxes and polygons are
    shifted by the crop offset and polygons clipped to the window; the pad does not move them.
    Unlike Detectron2, the crop window is never declared larger than the input, so polygons are
    clipped to the image and the transform's ``inverse()`` is exact.
    """

    def __init__(
        self,
        crop_size: Union[int, Tuple[int, int]],
        pad: bool = True,
        pad_value: float = 128.0,
        seg_pad_value: int = 255,
    ):
        """
        Args:
            crop_size: the output (height, width) in pixels; an int means a square.
            pad: pad inputs smaller than ``crop_size`` up to it.
            pad_value: the image padding value (in the image's units: 128.0 is mid-grey for
                uint8 [0, 255] images).
            seg_pad_value: the label-map padding value (255, the usual ignore label).

        Raises:
            ValueError: ``crop_size`` is not one or two positive integers.
        """
        super().__init__()
        if isinstance(crop_size, (int, np.integer)):
            crop_size = (int(crop_size), int(crop_size))
        crop_size = tuple(crop_size)
        if len(crop_size) != 2 or not all(int(c) == c and c > 0 for c in crop_size):
            raise ValueError(f"FixedSizeCrop: crop_size must be (height, width) positive integers; got {crop_size}")
        crop_size = (int(crop_size[0]), int(crop_size[1]))
        self._init(locals())

    def _get_crop(self, image: np.ndarray) -> Transform:
        """The CropTransform for ``image`` (draws the random offset)."""
        h, w = image.shape[:2]
        ch, cw = self.crop_size
        max_offset = np.maximum(np.subtract((h, w), (ch, cw)), 0)
        offset = np.round(max_offset * np.random.uniform(0.0, 1.0)).astype(int)
        return CropTransform(int(offset[1]), int(offset[0]), min(cw, w), min(ch, h), w, h)

    def _get_pad(self, image: np.ndarray) -> Transform:
        """The PadTransform from the cropped size of ``image`` to ``crop_size``."""
        h, w = image.shape[:2]
        ch, cw = self.crop_size
        cropped_h, cropped_w = min(h, ch), min(w, cw)
        return PadTransform(
            0, 0, cw - cropped_w, ch - cropped_h, cropped_w, cropped_h, self.pad_value, self.seg_pad_value
        )

    def get_transform(self, image: np.ndarray) -> TransformList:
        transforms = [self._get_crop(image)]
        if self.pad:
            transforms.append(self._get_pad(image))
        return TransformList(transforms)


_CROP_TYPES = ("relative_range", "relative", "absolute", "absolute_range")


class RandomCrop(Augmentation):
    """Crop a random window (Detectron2 ``RandomCrop``).

    Crop types, for an input of (H, W) pixels:

    - "relative": a (H * crop_size[0], W * crop_size[1]) window; values in (0, 1].
    - "relative_range": draw ch in [crop_size[0], 1] and cw in [crop_size[1], 1] uniformly,
      then as "relative".
    - "absolute": a (min(crop_size[0], H), min(crop_size[1], W)) window.
    - "absolute_range": draw the height in [min(H, crop_size[0]), min(H, crop_size[1])] and the
      width in [min(W, crop_size[0]), min(W, crop_size[1])] (integers, ends included).
    """

    def __init__(self, crop_type: str, crop_size: Sequence[float]):
        """
        Raises:
            ValueError: an unknown crop type, a crop_size that is not two values, a relative
                size outside (0, 1], or an "absolute_range" with min > max.
        """
        super().__init__()
        if crop_type not in _CROP_TYPES:
            raise ValueError(f"RandomCrop: crop_type must be one of {_CROP_TYPES}; got '{crop_type}'")
        crop_size = tuple(crop_size)
        if len(crop_size) != 2:
            raise ValueError(f"RandomCrop: crop_size must be two values; got {crop_size}")
        if crop_type in ("relative", "relative_range") and not all(0 < c <= 1 for c in crop_size):
            raise ValueError(f"RandomCrop: a '{crop_type}' crop_size must be in (0, 1]; got {crop_size}")
        if crop_type == "absolute_range" and crop_size[0] > crop_size[1]:
            raise ValueError(f"RandomCrop: an 'absolute_range' crop_size must be [min, max]; got {crop_size}")
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        croph, cropw = self.get_crop_size((h, w))
        h0 = np.random.randint(h - croph + 1)
        w0 = np.random.randint(w - cropw + 1)
        return CropTransform(w0, h0, cropw, croph)

    def get_crop_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """The crop (height, width) in pixels for an image of ``image_size`` = (H, W)."""
        h, w = image_size
        if self.crop_type == "relative":
            ch, cw = self.crop_size
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "relative_range":
            crop_size = np.asarray(self.crop_size, dtype=np.float32)
            ch, cw = crop_size + np.random.rand(2) * (1 - crop_size)
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "absolute":
            return min(int(self.crop_size[0]), h), min(int(self.crop_size[1]), w)
        # absolute_range
        ch = np.random.randint(min(h, self.crop_size[0]), min(h, self.crop_size[1]) + 1)
        cw = np.random.randint(min(w, self.crop_size[0]), min(w, self.crop_size[1]) + 1)
        return int(ch), int(cw)


class RandomCrop_CategoryAreaConstraint(Augmentation):
    """``RandomCrop`` that avoids windows dominated by one category (Detectron2's).

    Up to 10 windows are drawn; the first in which more than one category is present and no
    single category (other than ``ignored_category``) covers ``single_category_max_area`` or more
    of the counted pixels is used, otherwise the 10th. ``single_category_max_area >= 1`` turns
    this into a plain ``RandomCrop``.
    """

    def __init__(
        self,
        crop_type: str,
        crop_size: Sequence[float],
        single_category_max_area: float = 1.0,
        ignored_category: int | None = None,
    ):
        """
        Args:
            crop_type, crop_size: as in :class:`RandomCrop`.
            single_category_max_area: the largest allowed fraction (0..1] of one category.
            ignored_category: a label not counted (usually the ignore label, 255).
        """
        super().__init__()
        self.crop_aug = RandomCrop(crop_type, crop_size)
        self._init(locals())

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray) -> Transform:
        if self.single_category_max_area >= 1.0:
            return self.crop_aug.get_transform(image)
        h, w = sem_seg.shape
        for _ in range(10):
            crop_size = self.crop_aug.get_crop_size((h, w))
            y0 = np.random.randint(h - crop_size[0] + 1)
            x0 = np.random.randint(w - crop_size[1] + 1)
            sem_seg_temp = sem_seg[y0 : y0 + crop_size[0], x0 : x0 + crop_size[1]]
            labels, cnt = np.unique(sem_seg_temp, return_counts=True)
            if self.ignored_category is not None:
                cnt = cnt[labels != self.ignored_category]
            if len(cnt) > 1 and np.max(cnt) < np.sum(cnt) * self.single_category_max_area:
                break
        return CropTransform(x0, y0, crop_size[1], crop_size[0])
