"""Per-frame photometric and rotation augmentations of the video training clips.

The original's ``INPUT.AUGMENTATIONS`` (``mask2former_video/data_video/augmentation.py``) adds
Detectron2's ``RandomBrightness(0.9, 1.1)``, ``RandomContrast(0.9, 1.1)``, ``RandomSaturation(0.9,
1.1)`` and ``RandomRotation([-15, 15], expand=False, center=[(0.4, 0.4), (0.6, 0.6)])``, which
:mod:`segcore.data.transforms` lacks; they are written here with Detectron2's definitions
(``detectron2/data/transforms/augmentation_impl.py``, ``transform.py``): a blend of the image with
black, its mean or its grayscale for the photometric ones (fvcore's ``BlendTransform``, geometry
untouched), an affine warp about a random centre for the rotation.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from segcore.data.transforms import Augmentation, BlendTransform, NoOpTransform, Transform

__all__ = ["RandomBrightness", "RandomContrast", "RandomRotation", "RandomSaturation", "RotationTransform"]

#: ITU-R 601 luma weights of R, G, B (the grayscale RandomSaturation blends with; the image is RGB)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


class _RandomBlend(Augmentation):
    """Blend the image with a reference, weight w ~ U[intensity_min, intensity_max]: ``w * image +
    (1 - w) * reference`` (w < 1 moves towards the reference, w > 1 away from it)."""

    def __init__(self, intensity_min: float, intensity_max: float):
        super().__init__()
        if not intensity_min <= intensity_max:
            raise ValueError(f"{type(self).__name__}: intensity_min ({intensity_min}) > intensity_max ({intensity_max})")
        self._init(locals())

    def reference(self, image: np.ndarray):
        raise NotImplementedError

    def get_transform(self, image: np.ndarray) -> Transform:
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return BlendTransform(src_image=self.reference(image), src_weight=1 - w, dst_weight=w)


class RandomBrightness(_RandomBlend):
    """Scale the intensities by w ~ U[intensity_min, intensity_max] (a blend with black)."""

    def reference(self, image: np.ndarray):
        return 0


class RandomContrast(_RandomBlend):
    """Scale the deviation from the image's mean intensity by w ~ U[intensity_min, intensity_max]."""

    def reference(self, image: np.ndarray):
        return image.mean()


class RandomSaturation(_RandomBlend):
    """Scale the deviation from the image's grayscale (RGB input) by w ~ U[intensity_min, intensity_max]."""

    def reference(self, image: np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"RandomSaturation needs an (H, W, 3) RGB image, got shape {image.shape}")
        return image.dot(np.asarray(LUMA_WEIGHTS))[:, :, np.newaxis]


class RotationTransform(Transform):
    """Rotate an (h, w) image by ``angle`` degrees counter-clockwise about ``center`` (Detectron2's).

    Args:
        h, w: the input size in pixels.
        angle: degrees, counter-clockwise.
        expand: grow the output to hold the whole rotated image (else the output is h x w and the
            corners are cut).
        center: (x, y) in pixels (default the image centre); only with ``expand=False``.
        interp: OpenCV interpolation of images (default bilinear); label maps use nearest.

    Pixels (``apply_image``) rotate about ``center - 0.5`` (pixel centres), coordinates
    (``apply_coords``) about ``center``; areas outside the input become 0.

    Raises:
        ValueError: ``center`` with ``expand=True``.
    """

    def __init__(self, h: int, w: int, angle: float, expand: bool = True, center: Optional[Tuple[float, float]] = None,
                 interp: Optional[int] = None):
        super().__init__()
        if center is not None and expand:
            raise ValueError("RotationTransform: a center is only supported with expand=False")
        image_center = np.array((w / 2, h / 2))
        center = image_center if center is None else np.asarray(center, dtype=np.float64)
        abs_cos, abs_sin = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
        if expand:
            bound_w, bound_h = np.rint([h * abs_sin + w * abs_cos, h * abs_cos + w * abs_sin]).astype(int)
        else:
            bound_w, bound_h = w, h
        self._set_attributes(dict(h=h, w=w, angle=angle, expand=expand, center=center, image_center=image_center,
                                  bound_w=int(bound_w), bound_h=int(bound_h),
                                  interp=cv2.INTER_LINEAR if interp is None else interp))
        self.rm_coords = self._rotation_matrix()
        self.rm_image = self._rotation_matrix(offset=-0.5)

    def _rotation_matrix(self, offset: float = 0.0) -> np.ndarray:
        center = (float(self.center[0] + offset), float(self.center[1] + offset))
        rm = cv2.getRotationMatrix2D(center, self.angle, 1)
        if self.expand:
            # shift so that the rotated image's centre is the output's centre
            rot_im_center = cv2.transform(self.image_center[None, None, :] + offset, rm)[0, 0, :]
            new_center = np.array([self.bound_w / 2, self.bound_h / 2]) + offset - rot_im_center
            rm[:, 2] += new_center
        return rm

    def apply_image(self, img: np.ndarray, interp: Optional[int] = None) -> np.ndarray:
        if len(img) == 0 or self.angle % 360 == 0:
            return img
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(f"RotationTransform for {self.h}x{self.w} images got an image of {img.shape[:2]}")
        return cv2.warpAffine(img, self.rm_image, (self.bound_w, self.bound_h),
                              flags=self.interp if interp is None else interp)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords = np.asarray(coords, dtype=float)
        if len(coords) == 0 or self.angle % 360 == 0:
            return coords
        return cv2.transform(coords[:, np.newaxis, :], self.rm_coords)[:, 0, :]

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self.apply_image(segmentation, interp=cv2.INTER_NEAREST)


class RandomRotation(Augmentation):
    """Rotate by a random angle about a random centre (Detectron2's ``RandomRotation``).

    Args:
        angle: with ``sample_style="range"``, [min, max] degrees drawn uniformly; with "choice",
            the angles to choose from.
        expand: see :class:`RotationTransform`.
        center: with "range", [[x_min, y_min], [x_max, y_max]] relative to the image (0..1), drawn
            uniformly; with "choice", relative centres to choose from; None: the image centre.
        sample_style: "range" or "choice".
        interp: OpenCV interpolation of images.

    Raises:
        ValueError: an unknown ``sample_style``.
    """

    def __init__(self, angle: Sequence[float], expand: bool = True, center=None, sample_style: str = "range",
                 interp: Optional[int] = None):
        super().__init__()
        if sample_style not in ("range", "choice"):
            raise ValueError(f"RandomRotation: sample_style must be 'range' or 'choice', got {sample_style!r}")
        self.is_range = sample_style == "range"
        if isinstance(angle, (float, int)):
            angle = (angle, angle)
        if center is not None and isinstance(center[0], (float, int)):
            center = (center, center)
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        center = None
        if self.is_range:
            angle = np.random.uniform(self.angle[0], self.angle[1])
            if self.center is not None:
                center = (np.random.uniform(self.center[0][0], self.center[1][0]),
                          np.random.uniform(self.center[0][1], self.center[1][1]))
        else:
            angle = np.random.choice(self.angle)
            if self.center is not None:
                center = self.center[np.random.choice(len(self.center))]
        if center is not None:
            center = (w * center[0], h * center[1])  # relative -> pixels
        if angle % 360 == 0:
            return NoOpTransform()
        return RotationTransform(h, w, angle, expand=self.expand, center=center, interp=self.interp)
