"""The inputs a benchmark feeds: random images, a dataset's images, random training batches."""
from __future__ import annotations

import itertools
from typing import List

import numpy as np
import torch

__all__ = ["batches_of", "dataset_images", "synthetic_images", "synthetic_training_batch"]


def synthetic_images(count: int, height: int, width: int, seed: int) -> List[np.ndarray]:
    """``count`` random uint8 BGR images (H, W, 3) from ``seed``."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def dataset_images(name: str, count: int) -> List[np.ndarray]:
    """The first ``count`` images of a registered dataset, as uint8 BGR arrays (H, W, 3); records
    whose file cannot be read are skipped.

    Raises:
        FileNotFoundError: the dataset lists no image that exists on disk.
    """
    import cv2

    from segcore.data import DatasetCatalog

    images = []
    for record in DatasetCatalog.get(name):
        image = cv2.imread(record.get("file_name", ""), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(image)
        if len(images) == count:
            break
    if not images:
        raise FileNotFoundError(f"dataset {name}: no image file found (is it generated / downloaded?)")
    return images


def batches_of(images: List[np.ndarray], batch_size: int) -> List[List[np.ndarray]]:
    """``len(images) // batch_size`` batches (at least one) of consecutive images, cycling through
    ``images`` when there are fewer than ``batch_size``."""
    return [list(itertools.islice(itertools.cycle(images), i * batch_size, (i + 1) * batch_size))
            for i in range(max(1, len(images) // batch_size))]


def synthetic_training_batch(*, num_classes: int, batch_size: int, height: int, width: int, seed: int,
                             instances_per_image: int = 8) -> List[dict]:
    """``batch_size`` training inputs: random uint8 images (3, H, W) with ``instances_per_image``
    random rectangles of random classes in ``[0, num_classes)`` as ``instances`` (``gt_classes``,
    ``gt_masks`` bool (N, H, W)), plus ``"height"`` / ``"width"``."""
    from segcore.structures import Instances

    generator = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(batch_size):
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
        masks = torch.zeros((instances_per_image, height, width), dtype=torch.bool)
        for k in range(instances_per_image):
            y0 = int(torch.randint(0, height // 2, (1,), generator=generator))
            x0 = int(torch.randint(0, width // 2, (1,), generator=generator))
            y1 = y0 + int(torch.randint(height // 8, height // 2, (1,), generator=generator))
            x1 = x0 + int(torch.randint(width // 8, width // 2, (1,), generator=generator))
            masks[k, y0:y1, x0:x1] = True
        instances = Instances((height, width))
        instances.gt_classes = torch.randint(0, num_classes, (instances_per_image,), generator=generator)
        instances.gt_masks = masks
        batch.append({"image": image, "instances": instances, "height": height, "width": width})
    return batch
