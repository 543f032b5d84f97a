// Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3): what the CPU
// and CUDA kernels share.
//
//   out[n, q, m, :] = sum_{l, p} A[n, q, m, l, p] * bilinear(value_l[n, :, m, :], loc[n, q, m, l, p])
//
// Conventions (those of the PyTorch reference, F.grid_sample(..., align_corners=False) with zero
// padding): a location (x, y) is normalized to [0, 1] over its level's H x W map, x (width)
// first; pixel (i, j) has its centre at ((j + 0.5) / W, (i + 0.5) / H); neighbours outside the
// map read zero.
//
// Layouts (all contiguous):
//   value              (N, S, M, D), S = sum_l H_l * W_l, levels flattened row-major
//   spatial_shapes     (L, 2) int64 (H_l, W_l)
//   level_start_index  (L,) int64
//   sampling_locations (N, Lq, M, L, P, 2)
//   attention_weights  (N, Lq, M, L, P)
//   output             (N, Lq, M * D)
// A "row" r = (n * Lq + q) * M + m indexes one (batch, query, head) triple; its output channels
// are out[r * D : (r + 1) * D], its locations loc[r * L * P * 2 : ...], its weights
// attn[r * L * P : ...].
#pragma once

#include <cmath>
#include <cstdint>
#include <tuple>

#include <ATen/core/Tensor.h>

#if defined(__CUDACC__)
#define MSDA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MSDA_HOST_DEVICE inline
#endif

namespace mask2former {

// The (up to) four map pixels a bilinear sample reads and their weights. Corner k is
// (y0 + k / 2, x0 + k % 2): 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
template <typename acc_t>
struct BilinearSample {
  int64_t index[4];  // row-major pixel index y * W + x within the level; meaningful where inside[k]
  bool inside[4];    // the corner lies on the map
  acc_t weight[4];   // bilinear weight of each corner (1 - fy)(1 - fx), (1 - fy) fx, fy (1 - fx), fy fx
  acc_t fx, fy;      // fractional position between the corners, for the gradients
};

// Fills `s` for the normalized location (loc_x, loc_y) on a height x width map. Returns false
// when no corner lies on the map (the sample is zero and so are its gradients), including
// non-finite locations.
template <typename acc_t>
MSDA_HOST_DEVICE bool bilinear_sample(acc_t loc_x, acc_t loc_y, int64_t height, int64_t width,
                                      BilinearSample<acc_t>& s) {
  // continuous pixel coordinates, pixel centres at integers
  const acc_t x = loc_x * static_cast<acc_t>(width) - static_cast<acc_t>(0.5);
  const acc_t y = loc_y * static_cast<acc_t>(height) - static_cast<acc_t>(0.5);
  // x in [-1, W) and y in [-1, H): otherwise every corner is off the map (NaN fails too)
  if (!(x >= static_cast<acc_t>(-1) && x < static_cast<acc_t>(width) && y >= static_cast<acc_t>(-1) &&
        y < static_cast<acc_t>(height))) {
    return false;
  }
#if defined(__CUDA_ARCH__)
  const acc_t x_floor = floor(x);
  const acc_t y_floor = floor(y);
#else
  const acc_t x_floor = std::floor(x);
  const acc_t y_floor = std::floor(y);
#endif
  const int64_t x0 = static_cast<int64_t>(x_floor);
  const int64_t y0 = static_cast<int64_t>(y_floor);
  s.fx = x - x_floor;
  s.fy = y - y_floor;
  const acc_t gx = static_cast<acc_t>(1) - s.fx;
  const acc_t gy = static_cast<acc_t>(1) - s.fy;
  s.weight[0] = gy * gx;
  s.weight[1] = gy * s.fx;
  s.weight[2] = s.fy * gx;
  s.weight[3] = s.fy * s.fx;
  const bool x0_in = x0 >= 0;              // x0 <= W - 1 always
  const bool x1_in = x0 + 1 <= width - 1;  // x0 + 1 >= 0 always
  const bool y0_in = y0 >= 0;
  const bool y1_in = y0 + 1 <= height - 1;
  s.inside[0] = y0_in && x0_in;
  s.inside[1] = y0_in && x1_in;
  s.inside[2] = y1_in && x0_in;
  s.inside[3] = y1_in && x1_in;
  s.index[0] = y0 * width + x0;
  s.index[1] = s.index[0] + 1;
  s.index[2] = s.index[0] + width;
  s.index[3] = s.index[2] + 1;
  return true;
}

// The gradient of a sample with respect to its normalized location, given dot[k] = <grad, corner k>
// (zero for corners off the map), scaled by the attention weight `a`: returns (d/dx, d/dy).
template <typename acc_t>
MSDA_HOST_DEVICE void location_gradient(const BilinearSample<acc_t>& s, const acc_t dot[4], acc_t a,
                                        int64_t height, int64_t width, acc_t& grad_x, acc_t& grad_y) {
  const acc_t gx = static_cast<acc_t>(1) - s.fx;
  const acc_t gy = static_cast<acc_t>(1) - s.fy;
  // d bilinear / d x (pixels), then x = loc_x * W - 0.5
  grad_x = a * static_cast<acc_t>(width) * (gy * (dot[1] - dot[0]) + s.fy * (dot[3] - dot[2]));
  grad_y = a * static_cast<acc_t>(height) * (gx * (dot[2] - dot[0]) + s.fx * (dot[3] - dot[1]));
}

// Sizes of the problem, read from the tensors' shapes.
struct Sizes {
  int64_t batch, spatial, heads, channels, levels, queries, points;
};

// Checks ranks, sizes, dtypes, devices and contiguity (the Python wrapper makes inputs contiguous
// and checks the spatial shapes' values); returns the sizes.
inline Sizes check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                          const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                          const at::Tensor& attention_weights) {
  TORCH_CHECK(value.dim() == 4, "ms_deform_attn: value must be (N, S, M, D), got ", value.sizes());
  TORCH_CHECK(spatial_shapes.dim() == 2 && spatial_shapes.size(1) == 2,
              "ms_deform_attn: spatial_shapes must be (L, 2), got ", spatial_shapes.sizes());
  TORCH_CHECK(sampling_locations.dim() == 6 && sampling_locations.size(5) == 2,
              "ms_deform_attn: sampling_locations must be (N, Lq, M, L, P, 2), got ", sampling_locations.sizes());
  TORCH_CHECK(attention_weights.dim() == 5,
              "ms_deform_attn: attention_weights must be (N, Lq, M, L, P), got ", attention_weights.sizes());
  const Sizes z{value.size(0), value.size(1), value.size(2), value.size(3), spatial_shapes.size(0),
                sampling_locations.size(1), sampling_locations.size(4)};
  TORCH_CHECK(level_start_index.dim() == 1 && level_start_index.size(0) == z.levels,
              "ms_deform_attn: level_start_index must be (L,) with L = ", z.levels, ", got ",
              level_start_index.sizes());
  TORCH_CHECK(sampling_locations.size(0) == z.batch && sampling_locations.size(2) == z.heads &&
                  sampling_locations.size(3) == z.levels,
              "ms_deform_attn: sampling_locations ", sampling_locations.sizes(), " does not match value ",
              value.sizes(), " and spatial_shapes ", spatial_shapes.sizes());
  TORCH_CHECK(attention_weights.size(0) == z.batch && attention_weights.size(1) == z.queries &&
                  attention_weights.size(2) == z.heads && attention_weights.size(3) == z.levels &&
                  attention_weights.size(4) == z.points,
              "ms_deform_attn: attention_weights ", attention_weights.sizes(), " does not match sampling_locations ",
              sampling_locations.sizes());
  TORCH_CHECK(sampling_locations.scalar_type() == value.scalar_type() &&
                  attention_weights.scalar_type() == value.scalar_type(),
              "ms_deform_attn: value, sampling_locations and attention_weights must have one dtype, got ",
              value.scalar_type(), ", ", sampling_locations.scalar_type(), ", ", attention_weights.scalar_type());
  TORCH_CHECK(spatial_shapes.scalar_type() == at::kLong && level_start_index.scalar_type() == at::kLong,
              "ms_deform_attn: spatial_shapes and level_start_index must be int64");
  for (const at::Tensor* t : {&spatial_shapes, &level_start_index, &sampling_locations, &attention_weights}) {
    TORCH_CHECK(t->device() == value.device(), "ms_deform_attn: all inputs must be on ", value.device(),
                ", got one on ", t->device());
  }
  for (const at::Tensor* t : {&value, &spatial_shapes, &level_start_index, &sampling_locations, &attention_weights}) {
    TORCH_CHECK(t->is_contiguous(), "ms_deform_attn: the kernels take contiguous tensors");
  }
  return z;
}

// CPU kernels (cpu/ms_deform_attn_cpu.cpp). Forward: (N, Lq, M * D). Backward: the gradients
// with respect to value, sampling_locations and attention_weights, in their dtypes and shapes.
at::Tensor ms_deform_attn_forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights);
std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& value, const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index, const at::Tensor& sampling_locations, const at::Tensor& attention_weights);

// CUDA kernels (cuda/ms_deform_attn_cuda.cu), same contracts.
at::Tensor ms_deform_attn_forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                       const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                                       const at::Tensor& attention_weights);
std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& value, const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index, const at::Tensor& sampling_locations, const at::Tensor& attention_weights);

}  // namespace mask2former

// A Python extension module with no functions: importing it loads the library, whose static
// initializers register the operators (the module name is the build's TORCH_EXTENSION_NAME).
#define MSDA_STRINGIFY_(x) #x
#define MSDA_STRINGIFY(x) MSDA_STRINGIFY_(x)
#define MSDA_PYINIT_(name) PyInit_##name
#define MSDA_PYINIT(name) MSDA_PYINIT_(name)
#define MSDA_DEFINE_PYTHON_MODULE(doc)                                                               \
  extern "C" PyMODINIT_FUNC MSDA_PYINIT(TORCH_EXTENSION_NAME)(void) {                               \
    static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, MSDA_STRINGIFY(TORCH_EXTENSION_NAME), \
                                            doc, -1, nullptr};                                       \
    return PyModule_Create(&module_def);                                                             \
  }
