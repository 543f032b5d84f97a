"""How each quickstart class looks: the photograph its texture comes from, its colour, its shape.

Classes are kept apart by colour first (a small model trained from scratch at low resolution
must tell them apart from local appearance), then by texture and, for things, by shape.
Keys are the category names of ``segcore/data/categories/quickstart.json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ["TextureStyle", "ClassStyle", "CLASS_STYLES", "BACKGROUND_PHOTOS", "style_for"]


@dataclass(frozen=True)
class TextureStyle:
    """A texture cut from a bundled photograph.

    Attributes:
        source: key of :data:`segcore.quickstart.sources.PHOTO_SOURCES`.
        tint: RGB colour the texture is given. The photograph's luminance modulates it
            (``tint * (1 + contrast * z)`` with ``z`` the standardised luminance); ``None``
            keeps the photograph's own colours.
        contrast: strength of the luminance modulation (tinted sources only).
        crop_fraction: (min, max) side of the cut window, as a fraction of the photograph's
            shorter side; smaller windows are enlarged more (coarser texture).
        gain: (min, max) brightness factor drawn per region / object.
        color_jitter: standard deviation of a per-channel log-gain drawn per region / object.
        rotate: whether the window may be turned by multiples of 90 degrees (off for
            textures with a direction, such as a sky gradient).
    """

    source: str
    tint: Optional[Tuple[int, int, int]] = None
    contrast: float = 0.3
    crop_fraction: Tuple[float, float] = (0.3, 0.7)
    gain: Tuple[float, float] = (0.9, 1.1)
    color_jitter: float = 0.05
    rotate: bool = True


@dataclass(frozen=True)
class ClassStyle:
    """Appearance of one class; ``shape`` (a key of ``shapes.SHAPES``) is set for things only."""

    texture: TextureStyle
    shape: Optional[str] = None


CLASS_STYLES: Dict[str, ClassStyle] = {
    # stuff: large regions
    "brick": ClassStyle(TextureStyle("brick", tint=(176, 82, 62), contrast=0.45)),
    "grass": ClassStyle(TextureStyle("grass", tint=(84, 150, 52), contrast=0.4)),
    "gravel": ClassStyle(TextureStyle("gravel", tint=(150, 140, 125), contrast=0.4)),
    "sky": ClassStyle(
        TextureStyle("rocket_sky", crop_fraction=(0.6, 1.0), gain=(1.15, 1.5), rotate=False)
    ),
    "space": ClassStyle(TextureStyle("hubble_deep_field", crop_fraction=(0.2, 0.45), gain=(1.0, 1.4))),
    # things: composited objects
    # a small window of the coins photograph: part of one coin's relief and rim
    "disc": ClassStyle(
        TextureStyle("coins", tint=(240, 195, 40), contrast=0.25, crop_fraction=(0.12, 0.25)), shape="disc"
    ),
    "square": ClassStyle(TextureStyle("camera", tint=(210, 60, 190), contrast=0.25), shape="square"),
    "triangle": ClassStyle(TextureStyle("text", tint=(40, 200, 220), contrast=0.3), shape="triangle"),
    "star": ClassStyle(TextureStyle("moon", tint=(245, 245, 235), contrast=0.3), shape="star"),
    "ring": ClassStyle(TextureStyle("chelsea", tint=(140, 80, 240), contrast=0.25), shape="ring"),
}

# Photographs shown, unlabelled (ignore value), where a layout region gets no stuff class.
BACKGROUND_PHOTOS: Tuple[str, ...] = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "grace_hopper",
    "immunohistochemistry",
    "motorcycle",
)


def style_for(category: dict) -> ClassStyle:
    """The :class:`ClassStyle` of a category dict (``{"name", "isthing", ...}``).

    Raises:
        KeyError: if the category has no style, or a thing has no shape / a stuff class has one.
    """
    name = category["name"]
    if name not in CLASS_STYLES:
        raise KeyError(
            f"quickstart category {name!r} has no appearance in segcore/quickstart/styles.py "
            f"(known: {sorted(CLASS_STYLES)})"
        )
    style = CLASS_STYLES[name]
    if bool(category["isthing"]) != (style.shape is not None):
        raise KeyError(
            f"quickstart category {name!r} has isthing={category['isthing']} but its style "
            f"{'has' if style.shape else 'lacks'} a shape"
        )
    return style
