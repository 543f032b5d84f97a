// The CUDA implementations of torch.ops.mask2former_kernels.ms_deform_attn_{forward,backward}
// (defined by the CPU extension, register_cpu.cpp, which is loaded first).
#include <Python.h>

#include <torch/library.h>

#include "../ms_deform_attn.h"

MSDA_DEFINE_PYTHON_MODULE("Multi-scale deformable attention: the CUDA kernels (torch.ops.mask2former_kernels)")

TORCH_LIBRARY_IMPL(mask2former_kernels, CUDA, m) {
  m.impl("ms_deform_attn_forward", &mask2former::ms_deform_attn_forward_cuda);
  m.impl("ms_deform_attn_backward", &mask2former::ms_deform_attn_backward_cuda);
}
