"""Real photographs bundled with scikit-image and matplotlib, read offline.

Only images that ship inside the installed packages are used (some ``skimage.data`` items are
fetched with ``pooch`` on first use and are therefore not listed here).
"""
from __future__ import annotations

import functools
from typing import Callable, Dict

import numpy as np

__all__ = ["PHOTO_SOURCES", "load_photo"]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


def _motorcycle() -> np.ndarray:
    import skimage.data

    left, _, _ = skimage.data.stereo_motorcycle()
    return left


def _rocket_sky() -> np.ndarray:
    # A window of clear evening sky between the left launch tower and the rocket
    # (rows 0..319, columns 215..297 of the 427 x 640 photograph).
    import skimage.data

    return skimage.data.rocket()[0:320, 215:298]


# name -> loader returning uint8 (H, W) grayscale or (H, W, 3) RGB.
PHOTO_SOURCES: Dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "brick": _skimage("brick"),
    "camera": _skimage("camera"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "coins": _skimage("coins"),
    "grace_hopper": _grace_hopper,
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "moon": _skimage("moon"),
    "motorcycle": _motorcycle,
    "page": _skimage("page"),
    "rocket_sky": _rocket_sky,
    "text": _skimage("text"),
}


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """A bundled photograph as a read-only array.

    Args:
        name: a key of :data:`PHOTO_SOURCES`.

    Returns:
        uint8 array, (H, W) for grayscale sources or (H, W, 3) RGB; alpha channels are dropped.

    Raises:
        KeyError: for an unknown name (the message lists the known ones).
        RuntimeError: if the installed scikit-image / matplotlib cannot provide the image offline.
    """
    if name not in PHOTO_SOURCES:
        raise KeyError(f"unknown quickstart photo source {name!r}; known: {sorted(PHOTO_SOURCES)}")
    try:
        image = np.asarray(PHOTO_SOURCES[name]())
    except (ImportError, OSError, ValueError) as e:
        raise RuntimeError(
            f"cannot load the bundled photograph {name!r} from the installed scikit-image / "
            f"matplotlib ({type(e).__name__}: {e})"
        ) from e
    if image.dtype != np.uint8:
        raise RuntimeError(f"bundled photograph {name!r} has dtype {image.dtype}, expected uint8")
    if image.ndim == 3:
        image = image[..., :3]
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image
