// The compiled kernels' operators, torch.ops.mask2former_kernels.ms_deform_attn_{forward,backward},
// with their CPU implementations; the CUDA extension (cuda/register_cuda.cpp) adds the CUDA ones.
// They are the raw kernels: the public operator torch.ops.mask2former.ms_deform_attn (Python,
// mask2former/ops/op.py) checks inputs, chooses an implementation and carries autograd, fake
// tensors for torch.compile / torch.export, and the fallback to the PyTorch reference.
#include <Python.h>

#include <torch/library.h>

#include "ms_deform_attn.h"

MSDA_DEFINE_PYTHON_MODULE("Multi-scale deformable attention: the C++ CPU kernels (torch.ops.mask2former_kernels)")

TORCH_LIBRARY(mask2former_kernels, m) {
  m.def(
      "ms_deform_attn_forward(Tensor value, Tensor spatial_shapes, Tensor level_start_index, "
      "Tensor sampling_locations, Tensor attention_weights) -> Tensor");
  m.def(
      "ms_deform_attn_backward(Tensor grad_output, Tensor value, Tensor spatial_shapes, Tensor level_start_index, "
      "Tensor sampling_locations, Tensor attention_weights) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mask2former_kernels, CPU, m) {
  m.impl("ms_deform_attn_forward", &mask2former::ms_deform_attn_forward_cpu);
  m.impl("ms_deform_attn_backward", &mask2former::ms_deform_attn_backward_cpu);
}
