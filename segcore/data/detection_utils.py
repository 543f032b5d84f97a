"""Reading images and annotations for the data pipeline (as in Detectron2's ``detectron2/data/detection_utils.py``).

Images are read with PIL (EXIF orientation applied), returned as numpy arrays in the channel
order the model expects (``INPUT.FORMAT``). Every failure names the file it concerns.
"""
from __future__ import annotations

import logging
from typing import List, Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segcore.utils.file_io import PathManager

from . import transforms as T

__all__ = [
    "ImageReadError",
    "SizeMismatchError",
    "build_augmentation",
    "check_image_size",
    "check_sem_seg_size",
    "convert_PIL_to_numpy",
    "read_image",
    "read_sem_seg",
]

# https://en.wikipedia.org/wiki/YUV#SDTV_with_BT.601
_M_RGB2YUV = [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]

_EXIF_ORIENTATION = 0x0112

#: image formats read_image accepts; None keeps the file's own mode
SUPPORTED_IMAGE_FORMATS = ("RGB", "BGR", "L", "YUV-BT.601")


class ImageReadError(OSError):
    """An image or annotation file exists but cannot be decoded."""


class SizeMismatchError(ValueError):
    """An image's size differs from the size its annotation declares."""


def convert_PIL_to_numpy(image: Image.Image, format: Optional[str]) -> np.ndarray:
    """Convert a PIL image to a numpy array in ``format`` (Detectron2 ``convert_PIL_to_numpy``).

    Args:
        image: a PIL image.
        format: "RGB", "BGR", "L", "YUV-BT.601", or None to keep the image's own mode.

    Returns:
        (H, W, 3) uint8 for RGB/BGR, (H, W, 1) uint8 for "L", (H, W, 3) float64 for
        "YUV-BT.601"; with ``format=None`` whatever ``np.asarray`` gives for the mode
        ((H, W) for single-channel images).

    Raises:
        ValueError: an unsupported format.
    """
    if format is not None:
        if format not in SUPPORTED_IMAGE_FORMATS:
            raise ValueError(f"Unsupported image format '{format}'; use one of {SUPPORTED_IMAGE_FORMATS}")
        # PIL only knows RGB; BGR and YUV are made from it below
        conversion_format = "RGB" if format in ("BGR", "YUV-BT.601") else format
        image = image.convert(conversion_format)
    arr = np.asarray(image)
    if format == "L":
        arr = np.expand_dims(arr, -1)
    elif format == "BGR":
        arr = arr[:, :, ::-1]
    elif format == "YUV-BT.601":
        arr = np.dot(arr / 255.0, np.array(_M_RGB2YUV).T)
    return arr


def _open_image(file_name: str, what: str) -> Image.Image:
    """Open and fully decode ``file_name`` with PIL, applying EXIF orientation."""
    try:
        with PathManager.open(file_name, "rb") as f:
            image = Image.open(f)
            image.load()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{what} file not found: '{file_name}'") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"Cannot read {what} file '{file_name}' (corrupt or not an image): {e}") from e
    # EXIF orientation (tag 0x0112) is applied as Detectron2 does, with Pillow's own transpose
    if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    return image


def read_image(file_name: str, format: Optional[str] = None) -> np.ndarray:
    """Read an image file into a numpy array (Detectron2 ``read_image``).

    Args:
        file_name: a path PathManager can open (local, http(s)://, detectron2://).
        format: "RGB", "BGR", "L" (or "YUV-BT.601"); None keeps the file's own mode.

    Returns:
        (H, W, C) uint8 array (C = 3, or 1 for "L"); see :func:`convert_PIL_to_numpy`.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ImageReadError: the file cannot be decoded (the message names it).
        ValueError: an unsupported format.
    """
    if format is not None and format not in SUPPORTED_IMAGE_FORMATS:
        raise ValueError(f"Unsupported image format '{format}' for '{file_name}'; use one of {SUPPORTED_IMAGE_FORMATS}")
    image = _open_image(file_name, "image")
    return convert_PIL_to_numpy(image, format)


def read_sem_seg(file_name: str) -> np.ndarray:
    """Read a semantic-segmentation label image (one class id per pixel).

    Single-channel PNGs are read as they are (mode "L" -> uint8, "I;16" -> uint16, "P" -> the
    palette indices, "I" -> int32).

    Returns:
        (H, W) integer array of class ids.

    Raises:
        FileNotFoundError / ImageReadError: the file is missing or cannot be decoded.
        ValueError: the file is not a single-channel label image (e.g. an RGB colour map).
    """
    image = _open_image(file_name, "semantic segmentation")
    arr = np.asarray(image)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"Semantic segmentation file '{file_name}' must be a single-channel image of class ids; "
            f"got PIL mode '{image.mode}' (array shape {arr.shape}, dtype {arr.dtype})"
        )
    return arr


def check_image_size(dataset_dict: dict, image: np.ndarray) -> None:
    """Check the image against the "width"/"height" of its dataset dict, then fill them in.

    As in Detectron2: when the dict has "width" or "height", both must match the image;
    missing keys are set from the image (so later steps, e.g. aspect-ratio grouping, have them).

    Args:
        dataset_dict: a Detectron2-format dict with "file_name".
        image: (H, W, ...) array read from ``dataset_dict["file_name"]``.

    Raises:
        SizeMismatchError: the sizes differ (the message names the file and both sizes).
    """
    if "width" in dataset_dict or "height" in dataset_dict:
        image_wh = (image.shape[1], image.shape[0])
        expected_wh = (dataset_dict.get("width", image.shape[1]), dataset_dict.get("height", image.shape[0]))
        if image_wh != expected_wh:
            raise SizeMismatchError(
                f"Mismatched image shape for '{dataset_dict.get('file_name', '<unknown file>')}': "
                f"got (width, height) = {image_wh}, the annotation says {expected_wh}. "
                "Please check the width/height in your annotation."
            )
    if "width" not in dataset_dict:
        dataset_dict["width"] = image.shape[1]
    if "height" not in dataset_dict:
        dataset_dict["height"] = image.shape[0]


def check_sem_seg_size(image: np.ndarray, sem_seg: np.ndarray, image_file: str, sem_seg_file: str) -> None:
    """Check that a label map has the image's height and width.

    Args:
        image: (H, W, ...) image array.
        sem_seg: (H', W') label array.
        image_file, sem_seg_file: paths used in the error message.

    Raises:
        SizeMismatchError: (H', W') != (H, W) (the message names both files and sizes).
    """
    if tuple(sem_seg.shape[:2]) != tuple(image.shape[:2]):
        raise SizeMismatchError(
            f"Semantic segmentation '{sem_seg_file}' has size (H, W) = {tuple(sem_seg.shape[:2])} but its image "
            f"'{image_file}' has size {tuple(image.shape[:2])}; an annotation must have its image's size."
        )


def build_augmentation(cfg, is_train: bool) -> List[T.Augmentation]:
    """The default augmentations of a config (Detectron2 ``build_augmentation``).

    Training: ``ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN,
    INPUT.MIN_SIZE_TRAIN_SAMPLING)`` then ``RandomFlip`` as ``INPUT.RANDOM_FLIP`` says
    ("horizontal", "vertical" or "none"). Inference: ``ResizeShortestEdge(INPUT.MIN_SIZE_TEST,
    INPUT.MAX_SIZE_TEST, "choice")`` (MIN_SIZE_TEST 0 disables resizing).

    Raises:
        ValueError: an unknown ``INPUT.RANDOM_FLIP``.
    """
    if is_train:
        min_size = cfg.INPUT.MIN_SIZE_TRAIN
        max_size = cfg.INPUT.MAX_SIZE_TRAIN
        sample_style = cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
    else:
        min_size = cfg.INPUT.MIN_SIZE_TEST
        max_size = cfg.INPUT.MAX_SIZE_TEST
        sample_style = "choice"
    augmentation: List[T.Augmentation] = [T.ResizeShortestEdge(min_size, max_size, sample_style)]
    if is_train:
        flip = cfg.INPUT.RANDOM_FLIP
        if flip not in ("none", "horizontal", "vertical"):
            raise ValueError(f"INPUT.RANDOM_FLIP must be 'none', 'horizontal' or 'vertical'; got '{flip}'")
        if flip != "none":
            augmentation.append(T.RandomFlip(horizontal=flip == "horizontal", vertical=flip == "vertical"))
    logging.getLogger(__name__).debug("Augmentations (%s): %s", "train" if is_train else "test", augmentation)
    return augmentation
