"""Cutting textures and backgrounds out of the bundled photographs."""
from __future__ import annotations

import cv2
import numpy as np

from .sources import load_photo
from .styles import TextureStyle

__all__ = ["crop_resized", "render_texture"]

# Clip of the standardised luminance, in standard deviations, before tinting.
_LUMINANCE_CLIP = 2.5


def crop_resized(
    photo: np.ndarray,
    height: int,
    width: int,
    rng: np.random.Generator,
    crop_fraction=(0.5, 1.0),
    rotate: bool = False,
) -> np.ndarray:
    """A random window of ``photo`` resized to ``(height, width)``, randomly mirrored.

    The window has the output's aspect ratio (as far as the photograph allows) and a shorter side
    of ``crop_fraction`` (drawn uniformly in [min, max]) of the photograph's shorter side.

    Args:
        photo: uint8 (H, W) or (H, W, 3).
        height, width: output size in pixels (>= 1).
        rng: the random generator (the only source of randomness).
        crop_fraction: (min, max) in (0, 1].
        rotate: also turn the photograph by a random multiple of 90 degrees first.

    Returns:
        float32 array (height, width) or (height, width, 3), values in [0, 255].
    """
    if height < 1 or width < 1:
        raise ValueError(f"crop_resized: output size must be positive, got {height}x{width}")
    if rotate:
        photo = np.rot90(photo, k=int(rng.integers(4)))
    src_h, src_w = photo.shape[:2]
    side = rng.uniform(*crop_fraction) * min(src_h, src_w)
    aspect = width / height
    crop_h = side if aspect >= 1 else side / aspect
    crop_w = side * aspect if aspect >= 1 else side
    scale = min(1.0, src_h / crop_h, src_w / crop_w)  # shrink the window to fit the photograph
    crop_h = max(1, int(round(crop_h * scale)))
    crop_w = max(1, int(round(crop_w * scale)))
    y0 = int(rng.integers(0, src_h - crop_h + 1))
    x0 = int(rng.integers(0, src_w - crop_w + 1))
    window = photo[y0 : y0 + crop_h, x0 : x0 + crop_w]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    interpolation = cv2.INTER_AREA if crop_h * crop_w > height * width else cv2.INTER_LINEAR
    window = np.ascontiguousarray(window, dtype=np.float32)
    return cv2.resize(window, (width, height), interpolation=interpolation)


def render_texture(
    style: TextureStyle, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """Render a ``height`` x ``width`` patch of a class texture.

    A random window of ``style.source`` is cut and resized; tinted styles turn its luminance
    into shades of ``style.tint``; a random gain and per-channel colour jitter make every
    region / object slightly different.

    Returns:
        float32 (height, width, 3) RGB, values in [0, 255].
    """
    photo = load_photo(style.source)
    patch = crop_resized(photo, height, width, rng, style.crop_fraction, style.rotate)
    gain = rng.uniform(*style.gain) * np.exp(rng.normal(0.0, style.color_jitter, size=3))
    if style.tint is None:
        if patch.ndim == 2:
            patch = np.repeat(patch[..., None], 3, axis=2)
        out = patch * gain.astype(np.float32)
    else:
        luminance = patch if patch.ndim == 2 else patch @ np.float32([0.299, 0.587, 0.114])
        z = (luminance - luminance.mean()) / max(float(luminance.std()), 1.0)
        z = np.clip(z, -_LUMINANCE_CLIP, _LUMINANCE_CLIP)
        color = np.float32(style.tint) * gain.astype(np.float32)
        out = (1.0 + style.contrast * z)[..., None] * color
    return np.clip(out, 0.0, 255.0).astype(np.float32)
