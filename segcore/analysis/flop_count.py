"""FLOPs of a model taking ``list[dict]`` inputs, counted the way the original MaskFormer and
Mask2Former ``tools/analyze_model.py`` count them.

What the originals did (facebookresearch/MaskFormer da3e60d, facebookresearch/Mask2Former 9b0651c,
``tools/analyze_model.py``, adapted from Detectron2's, with which the MaskFormer paper's figures were
computed, facebookresearch/MaskFormer issue #47): Detectron2's ``FlopCountAnalysis``
(fvcore's jit-trace counter with Detectron2's ignored operators) over the **whole model in eval
mode**: backbone, pixel decoder, transformer decoder and the post-processing the config turns on
(semantic inference, Sec. 3.4 of MaskFormer, i.e. the (K, N) x (N, H x W) product at the image
resolution; the panoptic and instance steps, elementwise, count nothing). Semantic figures (ADE20K):
one image of ``INPUT.CROP.SIZE[0]`` squared (512 x 512) with ``--use-fixed-input-size``; panoptic and
instance figures: averaged over 100 validation images. On a GPU the original Mask2Former's
deformable attention was an unsupported ``prim::PythonOp`` (not counted, about 2 GFLOPs at 800 x 1333).

The count: **one fused multiply-add is one FLOP** (fvcore, Detectron2); convolutions, ``linear``,
matrix products and ``einsum`` count their multiply-adds; group / layer / instance norm 5 FLOPs per
element (4 without affine parameters); bilinear resizes 4 per output element, nearest 1;
``grid_sampler`` 4 per output element; attention and the other products of the fast paths as
:mod:`segcore.analysis.flop_handles` says (families add their operators, e.g. Mask2Former's
deformable attention, ``mask2former.ops.flop_count``). Not counted: elementwise operators, reductions,
softmax, eval-mode batch norm, indexing and sorting (Detectron2's ``_IGNORED_OPS``,
:data:`~segcore.analysis.flop_handles.IGNORED_OPS`); any other operator without a handle is reported
in :attr:`FlopCount.unsupported_ops`, so nothing goes uncounted silently.

The model is counted as it runs, with its fast paths; the decoders skip at inference what only the
deep-supervision losses read, which the original decoders computed in eval mode too:
MaskFormer's five intermediate mask predictions (about 2.2 GFLOPs at 512 x 512), and Mask2Former's
intermediate masks at 1/4 resolution (here computed at the resolution of the level their attention
mask is for: about 14 GFLOPs less at 800 x 1333). The counts are therefore the papers' without that
work. MaskFormer's Table 1 (ADE20K, 512 x 512) against this count: R50 53 / 52.7 G, Swin-T 55 / 54.9 G,
Swin-S 79 / 78.7 G; the original tool run by its author gave Swin-S 81.1 G (facebookresearch/MaskFormer
issue #50), i.e. 78.7 G plus the intermediate masks and a resize to the real image's size.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import fvcore.nn
import numpy as np
import torch
from fvcore.nn import flop_count_table
from torch import nn

from .flop_handles import IGNORED_OPS, flop_handle_table

__all__ = ["FlopCount", "FlopCountAnalysis", "ImageInputWrapper", "count_flops"]


def _output_tensors(obj) -> List[torch.Tensor]:
    """Every tensor inside a model output (dicts, lists, tuples, Instances, Boxes, BitMasks)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj) for t in _output_tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for x in obj for t in _output_tensors(x)]
    if hasattr(obj, "get_fields"):
        return _output_tensors(obj.get_fields())
    if isinstance(getattr(obj, "tensor", None), torch.Tensor):
        return [obj.tensor]
    return []


class ImageInputWrapper(nn.Module):
    """Presents a model taking ``list[dict]`` as a module taking one image tensor.

    ``forward(image)`` calls ``model([{"image": image, "height": height, "width": width}])`` and
    returns every tensor of the output as a tuple, which is what a tracing counter needs.

    Args:
        model: a segcore meta-architecture.
        height, width: output size in pixels passed with the image (the original image size).
    """

    def __init__(self, model: nn.Module, height: int, width: int):
        super().__init__()
        self.model = model
        self.height = int(height)
        self.width = int(width)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """image: (C, H, W) uint8 tensor in ``INPUT.FORMAT``."""
        outputs = self.model([{"image": image, "height": self.height, "width": self.width}])
        return tuple(_output_tensors(outputs))


class FlopCountAnalysis(fvcore.nn.FlopCountAnalysis):
    """fvcore's ``FlopCountAnalysis`` with this project's handles
    (:func:`~segcore.analysis.flop_handles.flop_handle_table`, the registered ones included) and
    Detectron2's ignored operators (:data:`~segcore.analysis.flop_handles.IGNORED_OPS`).

    Args:
        model: an ``nn.Module`` whose ``forward(*inputs)`` takes and returns tensors (wrap a
            ``list[dict]`` model in :class:`ImageInputWrapper`).
        inputs: the positional inputs of ``model``.
    """

    def __init__(self, model: nn.Module, inputs: Tuple[torch.Tensor, ...]):
        super().__init__(model, inputs)
        self.set_op_handle(**flop_handle_table())
        self.set_op_handle(**{name: None for name in IGNORED_OPS})


@dataclass
class FlopCount:
    """The result of :func:`count_flops`.

    Attributes:
        gflops: per input, GFLOPs (1e9 multiply-adds, see the module docstring).
        table: fvcore's per-module table of the first input.
        by_operator: mean GFLOPs per operator type (``conv``, ``linear``, ``mm``, ...).
        unsupported_ops: operators without a FLOP formula (not counted) and their occurrences over
            all inputs.
    """

    gflops: List[float]
    table: str
    by_operator: Dict[str, float] = field(default_factory=dict)
    unsupported_ops: Dict[str, int] = field(default_factory=dict)

    @property
    def mean_gflops(self) -> float:
        """Mean of :attr:`gflops`."""
        return float(np.mean(self.gflops))

    @property
    def std_gflops(self) -> float:
        """Standard deviation of :attr:`gflops` (0 for one input)."""
        return float(np.std(self.gflops))


def count_flops(model: nn.Module, inputs: Sequence[dict], max_depth: int = 3) -> FlopCount:
    """FLOPs of ``model`` (a ``list[dict]`` meta-architecture) in eval mode, one input at a time.

    Args:
        model: the model; it is put in eval mode (and left so).
        inputs: model input dicts with ``"image"`` (uint8 (C, H, W)) and optionally ``"height"`` /
            ``"width"`` (the output size; default the image's).
        max_depth: module depth of the per-module table.

    Returns:
        :class:`FlopCount`.

    Raises:
        ValueError: no inputs.
    """
    if not len(inputs):
        raise ValueError("count_flops: no inputs to count FLOPs on")
    model.eval()
    totals: List[float] = []
    by_operator: Counter = Counter()
    unsupported: Counter = Counter()
    table = ""
    with torch.no_grad():
        for i, inp in enumerate(inputs):
            image = inp["image"]
            height, width = inp.get("height", image.shape[-2]), inp.get("width", image.shape[-1])
            analysis = FlopCountAnalysis(ImageInputWrapper(model, height, width).eval(), (image,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            totals.append(analysis.total() / 1e9)
            by_operator.update(analysis.by_operator())
            unsupported.update(analysis.unsupported_ops())
            if i == 0:
                table = flop_count_table(analysis, max_depth=max_depth)
    per_op = {k: v / len(totals) / 1e9 for k, v in by_operator.most_common()}
    return FlopCount(gflops=totals, table=table, by_operator=per_op, unsupported_ops=dict(unsupported))
