"""A table of the software environment, logged at the start of training (as Detectron2's ``collect_env``)."""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import torch
from tabulate import tabulate

__all__ = ["collect_env_info"]

_OPTIONAL_PACKAGES = ("fvcore", "iopath", "cv2", "PIL", "pycocotools", "scipy", "tensorboard")


def _package_version(name: str) -> str:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return "not found"
    return str(getattr(module, "__version__", "unknown"))


def collect_env_info() -> str:
    """A two-column text table: platform, Python, segcore, torch (with CUDA devices), NumPy and
    the main libraries' versions."""
    import segcore

    data = [
        ("sys.platform", sys.platform),
        ("Python", sys.version.replace("\n", "")),
        ("numpy", np.__version__),
        ("segcore", f"{segcore.__version__} @{os.path.dirname(segcore.__file__)}"),
        ("PyTorch", f"{torch.__version__} @{os.path.dirname(torch.__file__)}"),
        ("PyTorch debug build", torch.version.debug),
        ("torch._C._GLIBCXX_USE_CXX11_ABI", getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", "unknown")),
    ]
    has_cuda = torch.cuda.is_available()
    data.append(("GPU available", has_cuda))
    if has_cuda:
        names: dict[str, list[str]] = {}
        for k in range(torch.cuda.device_count()):
            cap = ".".join(str(x) for x in torch.cuda.get_device_capability(k))
            names.setdefault(f"{torch.cuda.get_device_name(k)} (arch={cap})", []).append(str(k))
        for name, devids in names.items():
            data.append(("GPU " + ",".join(devids), name))
        data.append(("CUDA (torch build)", torch.version.cuda))
        data.append(("cuDNN", torch.backends.cudnn.version()))
    data.append(("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", "<not set>")))
    for name in _OPTIONAL_PACKAGES:
        data.append((name, _package_version(name)))
    data.append(("torch num threads", torch.get_num_threads()))
    return tabulate(data)


if __name__ == "__main__":
    print(collect_env_info())
