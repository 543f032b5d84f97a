"""Full-resolution mask logits, one block of rows at a time.

Every output of mask-classification inference (semantic scores, panoptic segments, instances) is a
per-pixel function of the N masks resized to the output resolution, followed by per-query sums.
So each output is computed block by block (:class:`MaskOutput`): a block of the resized logits is
made, turned into probabilities once, consumed by every output while it is in the CPU caches, and
dropped. Where the block is made:

- :func:`low_resolution_blocks`: straight from the (N, h, w) masks at the mask features' resolution,
  when the padded input is a power-of-two multiple of them and no resize follows the crop. Each
  block of rows is interpolated from the few low-resolution rows it reads, exactly as the whole
  tensor would be; the full-resolution (N, H, W) logits, hundreds of MB for a COCO image, are never
  stored.
- :func:`row_blocks`: row blocks (views) of an (N, H, W) tensor already at the resolution.

:func:`mask_logit_blocks` chooses between them; the resize it reproduces is the original
implementations' (bilinear to the padded input, crop to the image, bilinear to the output size).
"""
from __future__ import annotations

from functools import cached_property
from typing import Iterable, Iterator, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

from segcore.modeling import sem_seg_postprocess

__all__ = ["BLOCK_ELEMENTS", "MaskBlock", "MaskOutput", "crop_and_resize", "low_resolution_blocks",
           "mask_logit_blocks", "row_blocks", "run_outputs", "supports_low_resolution_blocks"]

#: floats of one block of full-resolution mask logits (about 4 MB: the block stays in the CPU caches)
BLOCK_ELEMENTS = 1 << 20


class MaskBlock:
    """Rows ``r0:r1`` of the full-resolution mask logits of one image.

    Attributes:
        r0, r1: the block's rows in the output (pixels).
        logits: float (N, r1 - r0, W), the mask logits of every query.
    """

    def __init__(self, r0: int, r1: int, logits: torch.Tensor, prob: Optional[torch.Tensor] = None):
        self.r0, self.r1, self.logits = r0, r1, logits
        if prob is not None:
            self.__dict__["prob"] = prob  # given by the caller: not computed again

    @cached_property
    def prob(self) -> torch.Tensor:
        """float (N, r1 - r0, W): ``sigmoid(logits)`` of every query, computed once per block."""
        return self.logits.sigmoid()

    def prob_of(self, queries: torch.Tensor) -> torch.Tensor:
        """float (U, r1 - r0, W): the probabilities of some queries (int64 (U,) indices), from
        :attr:`prob` when it was computed, else from their logits only."""
        if "prob" in self.__dict__:
            return self.prob.index_select(0, queries)
        return self.logits.index_select(0, queries).sigmoid()


class MaskOutput:
    """An output built block by block: :meth:`add` for each :class:`MaskBlock` in row order
    (covering the output once), then :meth:`result`."""

    def add(self, block: MaskBlock) -> None:
        raise NotImplementedError

    def result(self):
        raise NotImplementedError


def run_outputs(outputs: Sequence[MaskOutput], blocks: Iterable[MaskBlock]) -> list:
    """Feed every block to every output, then return their results in order."""
    for block in blocks:
        for output in outputs:
            output.add(block)
    return [output.result() for output in outputs]


def crop_and_resize(result: torch.Tensor, image_size: Tuple[int, int], output_height: int,
                    output_width: int) -> torch.Tensor:
    """:func:`segcore.modeling.sem_seg_postprocess` (crop the padding off, resize bilinearly to the
    output size), returning the crop itself when the output size is the image's own.

    A bilinear resize to the same size copies its input, so the values are those of
    ``sem_seg_postprocess``; the full-resolution pass is skipped (the usual case: no test-time
    resize, or an input given at its original size).

    Args:
        result: (C, Hpad, Wpad) float prediction at the padded input resolution.
        image_size: (h, w) of the image inside the padding, pixels.
        output_height, output_width: the size to return.

    Returns:
        (C, output_height, output_width); a view of ``result`` when no resize is needed.
    """
    h, w = int(image_size[0]), int(image_size[1])
    if (int(output_height), int(output_width)) == (h, w):
        return result[:, :h, :w]
    return sem_seg_postprocess(result, image_size, output_height, output_width)


def _integer_power_of_two_scale(small: int, large: int) -> int:
    """``large // small`` when it is a power of two (1, 2, 4, ...) dividing exactly, else 0."""
    if small <= 0 or large % small:
        return 0
    scale = large // small
    return scale if scale & (scale - 1) == 0 else 0


def supports_low_resolution_blocks(mask_size: Sequence[int], padded_size: Sequence[int],
                                   image_size: Sequence[int], output_size: Sequence[int]) -> bool:
    """Whether :func:`low_resolution_blocks` reproduces the resized masks exactly: the padded input
    is the same power-of-two multiple (1, 2, 4, ...) of the masks' size in both directions, and the
    output is the image's own size (no resize after cropping)."""
    scale = _integer_power_of_two_scale(int(mask_size[0]), int(padded_size[0]))
    return (bool(scale) and _integer_power_of_two_scale(int(mask_size[1]), int(padded_size[1])) == scale
            and tuple(int(s) for s in output_size) == tuple(int(s) for s in image_size))


def row_blocks(mask_logits: torch.Tensor, mask_prob: Optional[torch.Tensor] = None, *,
               block_elements: Optional[int] = None) -> Iterator[MaskBlock]:
    """Row blocks (views) of (N, H, W) mask logits already at the output resolution.

    Args:
        mask_logits: float (N, H, W). mask_prob: their sigmoid, when the caller has it.
        block_elements: about how many floats a block holds (at least one row; default
            :data:`BLOCK_ELEMENTS`).
    """
    n, h, w = mask_logits.shape
    rows = max(1, (block_elements or BLOCK_ELEMENTS) // max(1, n * w))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        yield MaskBlock(r0, r1, mask_logits[:, r0:r1], None if mask_prob is None else mask_prob[:, r0:r1])


def low_resolution_blocks(mask_logits: torch.Tensor, padded_size: Sequence[int], image_size: Sequence[int], *,
                          block_elements: Optional[int] = None) -> Iterator[MaskBlock]:
    """Row blocks of ``F.interpolate(mask_logits[None], padded_size, "bilinear")[0][:, :H, :W]``,
    each interpolated from the low-resolution rows it reads (bilinear, ``align_corners=False``:
    output row r reads source row (r + 0.5) / scale - 0.5).

    Args:
        mask_logits: float (N, h, w) at the mask features' resolution. padded_size: (Hp, Wp).
        image_size: (H, W) inside the padding. block_elements: about how many floats a block holds
            (at least ``scale`` rows; default :data:`BLOCK_ELEMENTS`).

    Raises:
        ValueError: the sizes are not supported (:func:`supports_low_resolution_blocks`).
    """
    num_queries, h, w = mask_logits.shape
    hp, wp = int(padded_size[0]), int(padded_size[1])
    height, width = int(image_size[0]), int(image_size[1])
    if not supports_low_resolution_blocks((h, w), (hp, wp), (height, width), (height, width)):
        raise ValueError(f"low_resolution_blocks: padded size {(hp, wp)} is not a power-of-two multiple of the "
                         f"masks' {(h, w)}")
    scale = hp // h
    rows = max(scale, (block_elements or BLOCK_ELEMENTS) // max(1, num_queries * wp) // scale * scale)
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        first = max(0, (2 * r0 + 1 - scale) // (2 * scale))
        last = min(h - 1, (2 * (r1 - 1) + 1 - scale) // (2 * scale) + 1)
        slab = F.interpolate(mask_logits[None, :, first:last + 1], scale_factor=float(scale), mode="bilinear",
                             align_corners=False, recompute_scale_factor=False)[0]
        offset = first * scale
        yield MaskBlock(r0, r1, slab[:, r0 - offset:r1 - offset, :width])


def mask_logit_blocks(mask_logits: torch.Tensor, padded_size: Sequence[int], image_size: Sequence[int],
                      output_size: Sequence[int]) -> Iterator[MaskBlock]:
    """Row blocks of the mask logits resized as the original implementations resize them: bilinear
    to the padded input, cropped to the image, bilinear to ``output_size``.

    From the low-resolution masks directly where that is exact (:func:`low_resolution_blocks`);
    otherwise the resized (N, H_out, W_out) tensor is made once and given in row blocks.

    Args:
        mask_logits: float (N, h, w) at the mask features' resolution. padded_size: (Hp, Wp) of the
            padded input. image_size: (H, W) of the image inside it. output_size: (H_out, W_out).
    """
    if supports_low_resolution_blocks(mask_logits.shape[-2:], padded_size, image_size, output_size):
        return low_resolution_blocks(mask_logits, padded_size, image_size)
    resized = F.interpolate(mask_logits[None], size=tuple(int(s) for s in padded_size), mode="bilinear",
                            align_corners=False)[0]
    return row_blocks(crop_and_resize(resized, image_size, int(output_size[0]), int(output_size[1])))
