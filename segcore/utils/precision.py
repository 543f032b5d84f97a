"""Numeric precision by name: the dtypes of ``TEST.PRECISION``, ``SOLVER.AMP.PRECISION`` and
``--precision``, and the autocast context that inference runs in."""
from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "inference_precision", "precision_dtype"]

#: precision names (``TEST.PRECISION``, ``SOLVER.AMP.PRECISION``, ``--precision``) -> dtypes
PRECISIONS = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}


def precision_dtype(precision: str | torch.dtype) -> torch.dtype:
    """The dtype a precision name stands for (see :data:`PRECISIONS`); a dtype is returned as is.

    Raises:
        ValueError: an unknown name, or a dtype other than float32 / bfloat16 / float16.
    """
    if isinstance(precision, torch.dtype):
        dtype = precision
    else:
        dtype = PRECISIONS.get(str(precision).lower())
        if dtype is None:
            raise ValueError(f"unknown precision {precision!r}; expected one of {sorted(PRECISIONS)}")
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"precision must be float32, bfloat16 or float16, got {dtype}")
    return dtype


def inference_precision(precision: str | torch.dtype, device_type: str):
    """The context in which a model runs inference at ``precision`` on ``device_type``.

    float32: no autocast (a null context). bfloat16 (CPU and CUDA) and float16 (CUDA): ``torch.autocast``
    to that dtype; models keep the parts that need float32 in float32 inside it (Mask2Former's
    deformable-attention pixel decoder, the mask-classification post-processing).

    Args:
        precision: a name of :data:`PRECISIONS` or a dtype.
        device_type: "cpu" or "cuda" (the model's device type).

    Raises:
        ValueError: an unknown precision, or float16 on the CPU (its CPU kernels are slow or
            missing: use bfloat16 there).
    """
    dtype = precision_dtype(precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    if dtype == torch.float16 and device_type == "cpu":
        raise ValueError("float16 inference is supported on CUDA only; use bfloat16 (or float32) on the CPU")
    return torch.autocast(device_type=device_type, dtype=dtype)
