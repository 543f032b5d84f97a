"""Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3).

:func:`ms_deform_attn` checks its inputs and computes the attention; :func:`ms_deform_attn_pytorch`
is the pure-PyTorch reference (no checks) that compiled kernels are tested against;
:class:`MSDeformAttn` is the attention module with the original parameter names.
"""
from .ms_deform_attn import ms_deform_attn, ms_deform_attn_pytorch
from .ms_deform_attn_module import MSDeformAttn

__all__ = ["MSDeformAttn", "ms_deform_attn", "ms_deform_attn_pytorch"]
