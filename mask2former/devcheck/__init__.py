"""Mask2Former's device check: the plan that ``tools/device_check.py`` runs on a lent GPU machine
(:mod:`mask2former.devcheck.plan`), and the small programs some of its steps run
(:mod:`~mask2former.devcheck.kernels`, :mod:`~mask2former.devcheck.distributed`,
:mod:`~mask2former.devcheck.op_benchmark`). The machinery is :mod:`segcore.devcheck`'s; see
``docs/device_check.md``.
"""
