"""SSD photometric distortion (``ColorAugSSDTransform``, from Detectron2's PointRend project).

Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016, section 3 (data augmentation),
following the Caffe SSD implementation (``src/caffe/util/im_transforms.cpp``): random
brightness, then contrast/saturation/hue in one of two orders. MaskFormer and Mask2Former
use it with ``INPUT.COLOR_AUG_SSD``.
"""
from __future__ import annotations

import cv2
import numpy as np
from fvcore.transforms.transform import Transform

__all__ = ["ColorAugSSDTransform"]


class ColorAugSSDTransform(Transform):
    """Random brightness, contrast, saturation and hue jitter of a uint8 image.

    Each of the four distortions is applied with probability 1/2; contrast comes either first
    or last (probability 1/2 each). The label map and coordinates are unchanged. The random
    draws are made from ``numpy.random`` when the image is transformed, so placing this
    transform in an augmentation list jitters every image differently.
    """

    def __init__(
        self,
        img_format: str,
        brightness_delta: int = 32,
        contrast_low: float = 0.5,
        contrast_high: float = 1.5,
        saturation_low: float = 0.5,
        saturation_high: float = 1.5,
        hue_delta: int = 18,
    ):
        """
        Args:
            img_format: channel order of the image, "BGR" or "RGB".
            brightness_delta: the largest added/subtracted intensity (0..255 units).
            contrast_low, contrast_high: the range of the contrast factor.
            saturation_low, saturation_high: the range of the saturation factor.
            hue_delta: the largest hue shift, in OpenCV hue units (0..179, i.e. 2 degrees each).

        Raises:
            ValueError: ``img_format`` is not "BGR" or "RGB".
        """
        super().__init__()
        if img_format not in ("BGR", "RGB"):
            raise ValueError(f"ColorAugSSDTransform works on 'BGR' or 'RGB' images; INPUT.FORMAT is '{img_format}'")
        self.is_rgb = img_format == "RGB"
        del img_format
        self._set_attributes(locals())

    def __repr__(self) -> str:
        return (
            f"ColorAugSSDTransform(img_format='{'RGB' if self.is_rgb else 'BGR'}', "
            f"brightness_delta={self.brightness_delta}, contrast=[{self.contrast_low}, {self.contrast_high}], "
            f"saturation=[{self.saturation_low}, {self.saturation_high}], hue_delta={self.hue_delta})"
        )

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation

    def apply_image(self, img: np.ndarray, interp=None) -> np.ndarray:
        """Jitter an (H, W, 3) uint8 image; returns a new (H, W, 3) uint8 array.

        Raises:
            ValueError: the image is not (H, W, 3) uint8.
        """
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"ColorAugSSDTransform needs an (H, W, 3) uint8 image; got shape {img.shape}, dtype {img.dtype}")
        if self.is_rgb:
            img = img[:, :, [2, 1, 0]]
        img = np.ascontiguousarray(img)
        img = self.brightness(img)
        if np.random.randint(2):
            img = self.contrast(img)
            img = self.saturation(img)
            img = self.hue(img)
        else:
            img = self.saturation(img)
            img = self.hue(img)
            img = self.contrast(img)
        if self.is_rgb:
            img = np.ascontiguousarray(img[:, :, [2, 1, 0]])
        return img

    @staticmethod
    def convert(img: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
        """``clip(img * alpha + beta, 0, 255)`` computed in float32, returned as uint8."""
        out = img.astype(np.float32) * alpha + beta
        return np.clip(out, 0, 255).astype(np.uint8)

    def brightness(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            return self.convert(img, beta=np.random.uniform(-self.brightness_delta, self.brightness_delta))
        return img

    def contrast(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            return self.convert(img, alpha=np.random.uniform(self.contrast_low, self.contrast_high))
        return img

    def saturation(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            hsv[:, :, 1] = self.convert(hsv[:, :, 1], alpha=np.random.uniform(self.saturation_low, self.saturation_high))
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return img

    def hue(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            shift = np.random.randint(-self.hue_delta, self.hue_delta + 1)
            hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int32) + shift) % 180
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return img
