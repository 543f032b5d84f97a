"""The inputs a model's FLOPs are counted on: test images of the config's test set, or synthetic ones.

FLOPs depend on the input size. As the original ``tools/analyze_model.py`` (MaskFormer, Mask2Former):
the test set's images mapped as at test time (resized by ``INPUT.MIN_SIZE_TEST`` /
``MAX_SIZE_TEST``), or, for the papers' semantic-segmentation figures, one image of
``INPUT.CROP.SIZE[0]`` x ``INPUT.CROP.SIZE[0]`` pixels (``--use-fixed-input-size``; 512 x 512 for
ADE20K). Synthetic images here are random uint8 images, reproducible (seed 0); their output size
(``height`` x ``width``) is their own size (the originals kept the real image's output size with the
fixed-size image, which adds a bilinear resize of the (K, H, W) scores: about 0.2 GFLOPs for ADE20K).
"""
from __future__ import annotations

import logging
import os
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = ["SYNTHETIC_SIZE_IF_NO_RESIZE", "dataset_inputs", "fixed_input_size", "flop_inputs", "synthetic_inputs"]

logger = logging.getLogger(__name__)

#: Side (pixels) of the synthetic input when INPUT.MIN_SIZE_TEST is 0 (no test-time resize).
SYNTHETIC_SIZE_IF_NO_RESIZE = 512
_SYNTHETIC_SEED = 0


def dataset_inputs(cfg, num_inputs: int) -> Optional[List[dict]]:
    """Up to ``num_inputs`` mapped test inputs of ``DATASETS.TEST[0]`` (Detectron2's test-time
    ``DatasetMapper``), or None when the dataset is not registered or its images are not on disk."""
    if not len(cfg.DATASETS.TEST):
        return None
    name = cfg.DATASETS.TEST[0]
    from segcore.data import DatasetCatalog, DatasetMapper

    try:
        dicts = DatasetCatalog.get(name)
    except (KeyError, FileNotFoundError, OSError) as e:
        logger.info(f"Test dataset {name} is not available ({e}); using synthetic inputs")
        return None
    dicts = [d for d in dicts[:num_inputs] if os.path.isfile(d.get("file_name", ""))]
    if not dicts:
        logger.info(f"Test dataset {name} has no image files on disk; using synthetic inputs")
        return None
    mapper = DatasetMapper(cfg, False)
    logger.info(f"Counting FLOPs on {len(dicts)} image(s) of {name}")
    return [mapper(d) for d in dicts]


def synthetic_inputs(num_inputs: int, height: int, width: int, channels: int = 3) -> List[dict]:
    """``num_inputs`` random uint8 (channels, height, width) images (seed 0) as model input dicts
    whose output size is the image's.

    Raises:
        ValueError: ``num_inputs`` < 1 or a size < 1 pixel.
    """
    if num_inputs < 1:
        raise ValueError(f"synthetic_inputs: num_inputs must be at least 1, got {num_inputs}")
    if height < 1 or width < 1:
        raise ValueError(f"synthetic_inputs: the image size must be at least 1x1 pixels, got {height}x{width}")
    g = torch.Generator().manual_seed(_SYNTHETIC_SEED)
    return [{"image": torch.randint(0, 256, (channels, height, width), dtype=torch.uint8, generator=g),
             "height": int(height), "width": int(width)} for _ in range(num_inputs)]


def fixed_input_size(cfg) -> Tuple[int, int]:
    """(side, side) with side = ``INPUT.CROP.SIZE[0]`` pixels: the original tools' ``--use-fixed-input-size``
    (the papers' semantic-segmentation FLOPs, e.g. 512 x 512 on ADE20K).

    Raises:
        ValueError: ``INPUT.CROP.SIZE[0]`` is not a whole number of pixels >= 1 (e.g. a relative crop).
    """
    crop = cfg.INPUT.CROP
    size = list(crop.SIZE) if "SIZE" in crop else []
    side = size[0] if size else None
    if not isinstance(side, (int, float)) or side < 1 or not float(side).is_integer():
        raise ValueError(f"--use-fixed-input-size takes INPUT.CROP.SIZE[0] as the image side in pixels, but this "
                         f"config's crop is {crop.get('TYPE', '?')} {size}; give the size with --input-size H W")
    return int(side), int(side)


def flop_inputs(cfg, num_inputs: int, input_size: Optional[Sequence[int]] = None) -> Tuple[List[dict], str]:
    """The inputs to count FLOPs on, and where they come from.

    Args:
        cfg: the model's config.
        num_inputs: how many (>= 1); the test set may have fewer images.
        input_size: (height, width) in pixels: synthetic images of that size. None: the test set's
            images when available, else synthetic ``INPUT.MIN_SIZE_TEST`` squares (
            :data:`SYNTHETIC_SIZE_IF_NO_RESIZE` if that is 0).

    Returns:
        (inputs, "dataset" or "synthetic").

    Raises:
        ValueError: ``num_inputs`` < 1 or a size < 1.
    """
    if num_inputs < 1:
        raise ValueError(f"num_inputs must be at least 1, got {num_inputs}")
    if input_size is None:
        inputs = dataset_inputs(cfg, num_inputs)
        if inputs is not None:
            return inputs, "dataset"
        side = int(cfg.INPUT.MIN_SIZE_TEST) or SYNTHETIC_SIZE_IF_NO_RESIZE
        input_size = (side, side)
    height, width = (int(s) for s in input_size)
    logger.info(f"Counting FLOPs on {num_inputs} synthetic {height}x{width} image(s)")
    return synthetic_inputs(num_inputs, height, width), "synthetic"
