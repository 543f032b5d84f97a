"""Which implementation of multi-scale deformable attention runs, and why.

The registered operator (:mod:`mask2former.ops.op`) asks :func:`select_implementation` on every
call, with the device and dtype of ``value``:

- ``MSDA_FORCE_PYTORCH=1`` in the environment (read at each call): the PyTorch reference
  (:func:`mask2former.ops.reference.ms_deform_attn_pytorch`), everywhere;
- CPU: the C++ kernel (``mask2former._C``) for float32, float64 and bfloat16; float16 runs the
  kernel in float32 (the inputs upcast, the outputs cast back); the reference when the kernel is not
  built or does not load;
- CUDA: the CUDA kernel (``mask2former._C_cuda``) for float16, bfloat16, float32 and float64; the
  reference when it is not built or does not load;
- any other device: the reference.

The first call for each (device type, dtype) logs one line (logger ``mask2former.ops.dispatch``,
INFO) naming the implementation and the reason, e.g. "multi-scale deformable attention on cpu
float32: the C++ CPU kernel (mask2former._C)" or "... cpu float32: the PyTorch reference
(MSDA_FORCE_PYTORCH=1)".
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import threading
from typing import Dict, Optional, Tuple

import torch

__all__ = ["FORCE_PYTORCH_ENV", "Implementation", "kernel_status", "select_implementation"]

logger = logging.getLogger(__name__)

#: set to "1" to run the PyTorch reference instead of any compiled kernel (for debugging)
FORCE_PYTORCH_ENV = "MSDA_FORCE_PYTORCH"

#: the compiled extension of each device type (built by setup.py)
_EXTENSIONS = {"cpu": "mask2former._C", "cuda": "mask2former._C_cuda"}
_KERNEL_DTYPES = {
    "cpu": (torch.float32, torch.float64, torch.bfloat16),
    "cuda": (torch.float16, torch.bfloat16, torch.float32, torch.float64),
}
#: dtypes a device's kernel runs in another dtype: {device type: {dtype: computed in}}
_UPCAST = {"cpu": {torch.float16: torch.float32}}

_lock = threading.Lock()
_status: Dict[str, Tuple[bool, str]] = {}
_logged: set = set()


@dataclasses.dataclass(frozen=True)
class Implementation:
    """The implementation chosen for one device and dtype.

    Attributes:
        kind: "cpu_kernel", "cuda_kernel" or "pytorch" (the reference).
        compute_dtype: the dtype the kernel computes in when it differs from the inputs' (float16
            on the CPU runs in float32), else None.
        reason: what runs and why, in words (the log line's).
    """

    kind: str
    compute_dtype: Optional[torch.dtype]
    reason: str

    @property
    def is_kernel(self) -> bool:
        return self.kind != "pytorch"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _load(device_type: str) -> Tuple[bool, str]:
    module = _EXTENSIONS[device_type]
    if device_type == "cuda":
        # the CUDA kernels register into the operators the CPU extension defines
        available, detail = kernel_status("cpu")
        if not available:
            return False, f"it needs the CPU extension: {detail}"
    try:
        importlib.import_module(module)
    except (ImportError, OSError) as e:  # not built (no compiler), or built against another torch
        return False, f"{module} does not load: {type(e).__name__}: {e}"
    return True, module


def kernel_status(device_type: str) -> Tuple[bool, str]:
    """(available, detail) of the compiled kernel for ``device_type`` ("cpu" or "cuda"); the
    extension is imported on the first call. detail is the module name, or why it is unavailable.
    Other device types have no kernel."""
    if device_type not in _EXTENSIONS:
        return False, f"no compiled kernel for device type {device_type!r}"
    status = _status.get(device_type)
    if status is None:
        status = _status[device_type] = _load(device_type)
    return status


def _choose(device_type: str, dtype: torch.dtype) -> Implementation:
    if os.environ.get(FORCE_PYTORCH_ENV, "") == "1":
        return Implementation("pytorch", None, f"the PyTorch reference ({FORCE_PYTORCH_ENV}=1)")
    if device_type not in _EXTENSIONS:
        return Implementation("pytorch", None, f"the PyTorch reference (no compiled kernel for {device_type})")
    name = "the C++ CPU kernel" if device_type == "cpu" else "the CUDA kernel"
    available, detail = kernel_status(device_type)
    if not available:
        return Implementation("pytorch", None, f"the PyTorch reference ({name} is unavailable: {detail})")
    kind = f"{device_type}_kernel"
    if dtype in _KERNEL_DTYPES[device_type]:
        return Implementation(kind, None, f"{name} ({detail})")
    upcast = _UPCAST.get(device_type, {}).get(dtype)
    if upcast is not None:
        return Implementation(kind, upcast, f"{name} ({detail}) in {_dtype_name(upcast)}, "
                                            f"cast back to {_dtype_name(dtype)} (it has no {_dtype_name(dtype)} variant)")
    return Implementation("pytorch", None, f"the PyTorch reference ({name} has no {_dtype_name(dtype)} variant)")


def select_implementation(device: torch.device, dtype: torch.dtype) -> Implementation:
    """The implementation for inputs on ``device`` with ``dtype`` (the rules: the module
    docstring); logs it on the first call for each (device type, dtype) and choice."""
    impl = _choose(device.type, dtype)
    key = (device.type, dtype, impl)
    if key not in _logged:
        with _lock:
            first = key not in _logged
            _logged.add(key)
        if first:
            logger.info("multi-scale deformable attention on %s %s: %s", device.type, _dtype_name(dtype), impl.reason)
    return impl
