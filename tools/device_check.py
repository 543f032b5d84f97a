#!/usr/bin/env python
"""The device check: prove the project on a lent GPU machine in one call (see docs/device_check.md).

    python tools/device_check.py --out OUT                # on the GPU machine, in the repository root
    python tools/device_check.py --cpu --out OUT          # what needs no GPU, on the CPU, tiny sizes
    python tools/device_check.py --list [--cpu]           # the steps, their limits and commands
    python tools/device_check.py --download-wheels        # here: the wheels the GPU machine lacks

Installs the carried wheels (``device_wheels/``) of the requirements the machine lacks, builds the
kernels for its GPU, runs the CUDA tests, the Mask2Former reference, AMP training and the benchmarks,
each with its own time limit inside ``--budget-s``, and writes report.json, summary.txt and the logs
to ``--out``. The machinery is segcore.devcheck; the plan is mask2former.devcheck.plan.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from segcore.devcheck.cli import main  # noqa: E402  (after the repository is on sys.path)

if __name__ == "__main__":
    sys.exit(main(plan="mask2former.devcheck.plan", repo_root=ROOT, prog="tools/device_check.py"))
