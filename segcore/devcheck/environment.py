"""The machine a check runs on (Python, torch, GPU, CUDA toolkit, cores, disk) and the environment
its commands get."""
from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import shutil
import subprocess
import sys
from typing import Dict, Optional, Sequence

__all__ = ["DeviceCheckError", "command_env", "cuda_toolkit", "describe_machine"]


class DeviceCheckError(RuntimeError):
    """The check cannot run as asked (e.g. no GPU without ``--cpu``)."""


def _first_line(command: Sequence[str], timeout: float = 20.0) -> Optional[str]:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in (done.stdout or "").splitlines() if line.strip()]
    return lines[-1] if done.returncode == 0 and lines else None


def cuda_toolkit() -> Dict[str, Optional[str]]:
    """The CUDA toolkit torch's extension builder would use: ``{"cuda_home", "nvcc"}`` (nvcc's
    version line), None where there is none."""
    try:
        from torch.utils.cpp_extension import CUDA_HOME
    except ImportError:
        CUDA_HOME = None
    nvcc = os.path.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else shutil.which("nvcc")
    version = _first_line([nvcc, "--version"]) if nvcc and os.path.exists(nvcc) else None
    return {"cuda_home": CUDA_HOME, "nvcc": version}


def describe_machine(work_dir: str) -> dict:
    """What the report says of the machine.

    Returns:
        ``{"python", "executable", "platform", "cpu_count", "torch", "torch_cuda", "cuda_available",
        "gpu": {"name", "capability", "arch", "memory_gib", "count", "driver"} or None, "cuda_home",
        "nvcc", "transformers", "disk_free_gib"}``; ``arch`` is the ``TORCH_CUDA_ARCH_LIST`` entry of
        the GPU (e.g. ``"9.0"``).
    """
    info: dict = {"python": platform.python_version(), "executable": sys.executable,
                  "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import torch
    except ImportError as e:
        info["torch"] = None
        info["torch_error"] = str(e)
        return info
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available(),
                gpu=None)
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        major, minor = torch.cuda.get_device_capability(0)
        info["gpu"] = {"name": props.name, "capability": [major, minor], "arch": f"{major}.{minor}",
                       "memory_gib": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count(),
                       "driver": _first_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])}
    info.update(cuda_toolkit())
    try:
        info["transformers"] = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        info["transformers"] = None
    os.makedirs(work_dir, exist_ok=True)
    info["disk_free_gib"] = round(shutil.disk_usage(work_dir).free / 2**30, 1)
    return info


def command_env(repo_root: str, python_paths: Sequence[str] = ()) -> Dict[str, str]:
    """The environment of the check's commands: this one, with ``python_paths`` and the repository
    root first on ``PYTHONPATH`` (the installed wheels, the package metadata, the project run from
    its checkout), unbuffered output, and no switch that would force the PyTorch reference."""
    env = dict(os.environ)
    paths = [*python_paths, repo_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("MSDA_FORCE_PYTORCH", None)
    return env
