"""Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3).

:func:`ms_deform_attn` checks its inputs and calls the registered operator
``torch.ops.mask2former.ms_deform_attn`` (:mod:`.op`), which runs a compiled kernel (C++ CPU,
CUDA; ``mask2former/ops/csrc``, built by setup.py) where one is available, else the pure-PyTorch
reference :func:`ms_deform_attn_pytorch` (:mod:`.reference`); :mod:`.dispatch` chooses, and
``MSDA_FORCE_PYTORCH=1`` forces the reference. :class:`MSDeformAttn` is the attention module with
the original parameter names. Importing this package registers the operator's FLOP count
(:mod:`.flop_count`) with ``segcore.analysis``.
"""
from . import flop_count  # noqa: F401  (registers the FLOP count of mask2former::ms_deform_attn)
from .dispatch import FORCE_PYTORCH_ENV, kernel_status, select_implementation
from .ms_deform_attn import IMPLEMENTATIONS, ms_deform_attn, ms_deform_attn_pytorch, ms_deform_attn_pytorch_backward
from .ms_deform_attn_module import MSDeformAttn

__all__ = ["FORCE_PYTORCH_ENV", "IMPLEMENTATIONS", "MSDeformAttn", "kernel_status", "ms_deform_attn",
           "ms_deform_attn_pytorch", "ms_deform_attn_pytorch_backward", "select_implementation"]
