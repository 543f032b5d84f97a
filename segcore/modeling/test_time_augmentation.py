"""Test-time augmentation (TTA) for semantic segmentation.

The multi-scale + flip inference of MaskFormer (Cheng et al., "Per-Pixel Classification is Not
All You Need for Semantic Segmentation", NeurIPS 2021, Sec. 4 and the "s.s. / m.s." columns of
Table 1), as done by the original MaskFormer and Mask2Former ``SemanticSegmentorWithTTA`` on top
of Detectron2's ``DatasetMapperTTA``:

* :class:`DatasetMapperTTA` turns one model input into one input per shorter-edge size of
  ``TEST.AUG.MIN_SIZES`` (longer edge capped at ``TEST.AUG.MAX_SIZE``), each also horizontally
  flipped when ``TEST.AUG.FLIP``;
* :class:`SemanticSegmentorWithTTA` runs any semantic model on them through its usual
  ``model(batched_inputs)`` call, flips the flipped outputs back and averages the per-class
  scores.

Enabled in ``train_net.py`` (evaluation with ``--eval-only`` and after training) by
``TEST.AUG.ENABLED True``; see ``DefaultTrainer.test_with_TTA``.
"""
from __future__ import annotations

import copy
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segcore.config import configurable
from segcore.data.detection_utils import read_image
from segcore.data.transforms import (
    HFlipTransform,
    NoOpTransform,
    ResizeShortestEdge,
    ResizeTransform,
    Transform,
    TransformList,
    VFlipTransform,
)

__all__ = ["DatasetMapperTTA", "SemanticSegmentorWithTTA"]


class DatasetMapperTTA:
    """Make the augmented copies of one model input (Detectron2's ``DatasetMapperTTA``).

    For every ``min_size`` in ``min_sizes`` (in order), the input image is resized so that its
    shorter edge is ``min_size`` pixels and its longer edge at most ``max_size`` pixels
    (:meth:`ResizeShortestEdge.get_output_shape`, bilinear); with ``flip`` the resized image is
    also flipped left-right, right after the unflipped one. The image that is resized is the
    input's ``"image"`` as given (usually already resized to ``INPUT.MIN_SIZE_TEST`` by the test
    mapper), as in Detectron2. No random number is drawn.

    Example::

        mapper = DatasetMapperTTA(min_sizes=[256, 512], max_size=2048, flip=True)
        augmented = mapper({"image": image, "height": 480, "width": 640})  # 4 dicts
    """

    @configurable
    def __init__(self, *, min_sizes: Sequence[int], max_size: int, flip: bool):
        """
        Args:
            min_sizes: the shorter-edge lengths in pixels, each > 0 (``TEST.AUG.MIN_SIZES``).
            max_size: the largest longer edge in pixels, > 0 (``TEST.AUG.MAX_SIZE``).
            flip: also make a horizontally flipped copy at every size (``TEST.AUG.FLIP``).

        Raises:
            ValueError: no size, or a size that is not a positive integer.
        """
        min_sizes = tuple(min_sizes)
        if len(min_sizes) == 0:
            raise ValueError("DatasetMapperTTA: min_sizes (TEST.AUG.MIN_SIZES) is empty")
        for s in (*min_sizes, max_size):
            if isinstance(s, bool) or int(s) != s or s <= 0:
                raise ValueError(
                    f"DatasetMapperTTA: sizes must be positive integers (pixels); got min_sizes={min_sizes}, "
                    f"max_size={max_size}"
                )
        self.min_sizes = tuple(int(s) for s in min_sizes)
        self.max_size = int(max_size)
        self.flip = bool(flip)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"min_sizes": cfg.TEST.AUG.MIN_SIZES, "max_size": cfg.TEST.AUG.MAX_SIZE, "flip": cfg.TEST.AUG.FLIP}

    def __len__(self) -> int:
        """The number of augmented copies of each input: ``len(min_sizes) * (2 if flip else 1)``."""
        return len(self.min_sizes) * (2 if self.flip else 1)

    def __call__(self, dataset_dict: dict) -> List[dict]:
        """
        Args:
            dataset_dict: a model input: ``"image"`` a uint8 (C, H, W) tensor (on any device),
                ``"height"`` and ``"width"`` the size of the original image in pixels; other keys
                are kept.

        Returns:
            ``len(self)`` shallow copies of ``dataset_dict`` in the order (size 1), (size 1,
            flipped), (size 2), ...; in each, ``"image"`` is the augmented uint8 (C, H', W')
            CPU tensor and ``"transforms"`` the :class:`TransformList` from the original image
            (height x width) to it: a resize when the given image has another size, then the
            TTA resize and, for the flipped copies, an :class:`HFlipTransform`.

        Raises:
            KeyError: no ``"image"``, ``"height"`` or ``"width"``.
        """
        image = dataset_dict["image"].detach().cpu().permute(1, 2, 0).numpy()  # (H, W, C)
        h, w = image.shape[:2]
        orig_h, orig_w = int(dataset_dict["height"]), int(dataset_dict["width"])
        # The given image may already be a resized copy of the original one.
        pre_tfm = NoOpTransform() if (h, w) == (orig_h, orig_w) else ResizeTransform(orig_h, orig_w, h, w)

        ret = []
        for min_size in self.min_sizes:
            new_h, new_w = ResizeShortestEdge.get_output_shape(h, w, min_size, self.max_size)
            resize = ResizeTransform(h, w, new_h, new_w, Image.Resampling.BILINEAR)
            resized = resize.apply_image(image)
            variants = [(resized, [pre_tfm, resize])]
            if self.flip:
                hflip = HFlipTransform(new_w)
                variants.append((hflip.apply_image(resized), [pre_tfm, resize, hflip]))
            for img, tfms in variants:
                dic = copy.copy(dataset_dict)
                dic["image"] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
                dic["transforms"] = TransformList(tfms)
                ret.append(dic)
        return ret


def _undo_flips(sem_seg: torch.Tensor, transforms: Transform) -> torch.Tensor:
    """Undo the horizontal / vertical flips of ``transforms`` on a (K, H, W) prediction that is
    already at the original image size (the model undid the resizes)."""
    for t in reversed(getattr(transforms, "transforms", [transforms])):
        if isinstance(t, HFlipTransform):
            sem_seg = sem_seg.flip(dims=[-1])
        elif isinstance(t, VFlipTransform):
            sem_seg = sem_seg.flip(dims=[-2])
    return sem_seg


class SemanticSegmentorWithTTA(nn.Module):
    """A semantic segmentation model with test-time augmentation (MaskFormer / Mask2Former's
    ``SemanticSegmentorWithTTA``).

    Called like the wrapped model, with a list of input dicts, and returns one
    ``{"sem_seg": (K, height, width)}`` float32 dict per input: the mean, over the augmented
    copies made by ``tta_mapper`` (default :class:`DatasetMapperTTA` from ``TEST.AUG``), of the
    model's ``"sem_seg"`` scores, the flipped copies' flipped back. The scores are averaged as the
    model returns them (MaskFormer: per-class probabilities; SemanticSegmentor: logits).

    Any model family works (``SemanticSegmentor``, ``MaskFormer``, ...): the model is only called
    as ``model(list_of_dicts)`` and must, in eval mode, return ``"sem_seg"`` resized to each
    input's ``"height"`` x ``"width"`` (as every meta-architecture here does). Semantic
    segmentation only: other outputs (``"panoptic_seg"``, ``"instances"``) are dropped.

    Each output is added to a float32 running sum as soon as it is computed, so at most
    ``batch_size`` outputs and the sum are held in memory at once.
    """

    def __init__(self, cfg, model: nn.Module, tta_mapper: Optional[Callable[[dict], List[dict]]] = None,
                 batch_size: int = 1):
        """
        Args:
            cfg: the config; ``INPUT.FORMAT`` is the format of images read from ``"file_name"``
                and ``TEST.AUG.*`` builds the default mapper.
            model: the semantic model, in eval mode when called; a ``DistributedDataParallel``
                is unwrapped.
            tta_mapper: input dict -> list of augmented input dicts, each with a
                ``"transforms"`` entry (horizontal / vertical flips in it are undone); default
                ``DatasetMapperTTA(cfg)``.
            batch_size: how many augmented images go through the model in one call, >= 1.

        Raises:
            ValueError: ``batch_size`` < 1.
        """
        super().__init__()
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"SemanticSegmentorWithTTA: batch_size must be a positive integer; got {batch_size}")
        self.cfg = cfg.clone()
        self.model = model
        self.tta_mapper = tta_mapper if tta_mapper is not None else DatasetMapperTTA(cfg)
        self.batch_size = int(batch_size)
        self.input_format = cfg.INPUT.FORMAT

    def forward(self, batched_inputs: List[dict]) -> List[dict]:
        """
        Args:
            batched_inputs: model input dicts: ``"image"`` a uint8 (C, H, W) tensor in
                ``INPUT.FORMAT``, or, without it, ``"file_name"`` an image file to read;
                ``"height"`` / ``"width"`` the output size in pixels (default: the image's).

        Returns:
            per input, ``{"sem_seg": float32 (K, height, width)}`` on the model's output device.

        Raises:
            RuntimeError: the model is in training mode.
            KeyError: an input without ``"image"`` and ``"file_name"``.
            ValueError: a model output without ``"sem_seg"`` (TTA supports semantic
                segmentation only), an output not at the input's height x width, or a mapper
                that returned no input.
            FileNotFoundError, segcore.data.detection_utils.ImageReadError: unreadable file.
        """
        if self.model.training:
            raise RuntimeError("SemanticSegmentorWithTTA runs inference only: call .eval() on it (or the model) first")
        return [self._inference_one_image(self._with_image(x)) for x in batched_inputs]

    def _with_image(self, dataset_dict: dict) -> dict:
        """A shallow copy of ``dataset_dict`` with ``"image"`` (read from ``"file_name"`` when
        absent), ``"height"`` and ``"width"``."""
        ret = copy.copy(dataset_dict)
        if "image" not in ret:
            if "file_name" not in ret:
                raise KeyError("SemanticSegmentorWithTTA: an input has neither 'image' nor 'file_name'")
            image = read_image(ret["file_name"], self.input_format)
            ret["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        ret.setdefault("height", ret["image"].shape[-2])
        ret.setdefault("width", ret["image"].shape[-1])
        return ret

    def _inference_one_image(self, dataset_dict: dict) -> dict:
        """Run the model on the augmented copies of one input and average the ``sem_seg`` scores."""
        augmented = self.tta_mapper(dataset_dict)
        if len(augmented) == 0:
            raise ValueError("SemanticSegmentorWithTTA: the TTA mapper returned no augmented input")
        transforms = [x.pop("transforms", NoOpTransform()) for x in augmented]
        expected_hw = (int(dataset_dict["height"]), int(dataset_dict["width"]))
        total: Optional[torch.Tensor] = None
        count = 0
        for start in range(0, len(augmented), self.batch_size):
            batch = augmented[start:start + self.batch_size]
            with torch.no_grad():
                outputs = self.model(batch)
            for output, tfms in zip(outputs, transforms[start:start + self.batch_size]):
                if "sem_seg" not in output:
                    raise ValueError(
                        "Test-time augmentation (TEST.AUG.ENABLED) supports semantic segmentation only: "
                        f"the model returned {sorted(output)} without 'sem_seg'"
                    )
                sem_seg = output["sem_seg"]
                if tuple(sem_seg.shape[-2:]) != expected_hw:
                    raise ValueError(
                        f"SemanticSegmentorWithTTA: the model returned 'sem_seg' of shape {tuple(sem_seg.shape)}; "
                        f"it must be resized to the input's height x width {expected_hw}"
                    )
                sem_seg = _undo_flips(sem_seg.to(torch.float32), tfms)
                total = sem_seg.clone() if total is None else total.add_(sem_seg)
                count += 1
            del outputs
        if count != len(augmented):
            raise ValueError(
                f"SemanticSegmentorWithTTA: the model returned {count} outputs for {len(augmented)} inputs"
            )
        return {"sem_seg": total.div_(count)}
