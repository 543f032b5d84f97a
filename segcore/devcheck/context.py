"""What a plan is built from: the folders, the mode, the machine."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

__all__ = ["CheckContext"]


@dataclass
class CheckContext:
    """The check a plan is made for.

    Attributes:
        repo_root: the repository the commands run in.
        work_dir: scratch space: datasets, training runs, result files (never sent back).
        out_dir: the report's folder.
        cpu: ``--cpu``: only what needs no GPU, on the CPU, with tiny sizes.
        python: the interpreter the commands run with.
        machine: :func:`segcore.devcheck.environment.describe_machine`'s description.
        metadata_dir: on ``PYTHONPATH`` for every command; a plan writes the project's package
            metadata there (its entry points) when ``needs_metadata``.
        needs_metadata: the project's distribution metadata is not visible (run from a copy of the
            repository that was not installed).
    """

    repo_root: str
    work_dir: str
    out_dir: str
    cpu: bool
    python: str
    machine: dict
    metadata_dir: str
    needs_metadata: bool = False

    @property
    def device(self) -> str:
        """"cpu" with ``--cpu``, else "cuda"."""
        return "cpu" if self.cpu else "cuda"

    @property
    def gpu_arch(self) -> Optional[str]:
        """The GPU's ``TORCH_CUDA_ARCH_LIST`` entry (e.g. "9.0"), None without a GPU."""
        gpu = self.machine.get("gpu")
        return gpu["arch"] if gpu else None

    @property
    def jobs(self) -> int:
        """Parallel compile jobs (the machine's cores)."""
        return max(1, self.machine.get("cpu_count") or os.cpu_count() or 1)

    def work(self, *parts: str) -> str:
        """A path under the work folder."""
        return os.path.join(self.work_dir, *parts)

    def repo(self, *parts: str) -> str:
        """A path under the repository."""
        return os.path.join(self.repo_root, *parts)
