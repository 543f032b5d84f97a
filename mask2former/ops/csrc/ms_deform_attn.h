// Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, Eq. 3): what the CPU
// and CUDA kernels share.
//
//   out[n, q, m, :] = sum_{l, p} A[n, q, m, l, p] * bilinear(value_l[n, :, m, :], loc[n, q, m, l, p])
//
// Conventions (those of the PyTorch reference, F.grid_sample(..., align_corners=False) with zero
// padding on the grid 2 * loc - 1): a location (x, y) is normalized to [0, 1] over its level's
// H x W map, x (width) first; pixel (i, j) has its centre at ((j + 0.5) / W, (i + 0.5) / H);
// neighbours outside the map read zero.
//
// Non-finite locations, as the reference (F.grid_sample's CPU kernel) treats them: a location whose
// pixel coordinate x or y is not finite (NaN, +-inf, or a finite location so large that the
// reference's arithmetic overflows: 2 * loc - 1 or (grid + 1) * size / 2 beyond the dtype's range,
// e.g. |loc| > 1.7e38 in float32) has NaN bilinear weights and no corner on the map, so
//   - its sample is NaN (0 * NaN), and so is every channel of the row's output;
//   - its weight's gradient is NaN, grad_value receives nothing from it;
//   - the gradient of x is NaN when y is not finite, else 0 (times the attention weight), and the
//     gradient of y is NaN when x is not finite, else 0.
// A finite location with no corner on the map samples 0 (its gradients are 0), and a non-finite
// attention weight times that 0 is NaN, as in the reference.
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
#include <vector>

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
  bool inside[4];    // the corner lies on the map (never for a non-finite location)
  acc_t weight[4];   // bilinear weight of each corner (1 - fy)(1 - fx), (1 - fy) fx, fy (1 - fx), fy fx; NaN
                     // for a non-finite location
  acc_t fx, fy;      // fractional position between the corners, for the gradients (NaN where not finite;
                     // see bilinear_sample for a location off the map)
};

// The pixel coordinate (pixel centres at integers) of a normalized location on a map `size` pixels
// wide, as the reference computes it: its grid 2 * loc - 1, then F.grid_sample's unnormalization
// (align_corners=False), (grid + 1) * (size / 2) - 0.5, the same operations in the same order, so
// that it overflows to +-inf exactly where the reference's does. The kernels sample with the
// equivalent, more accurate loc * size - 0.5 and use this one to tell finite from not.
template <typename acc_t>
MSDA_HOST_DEVICE acc_t reference_pixel_coordinate(acc_t loc, int64_t size) {
  const acc_t grid = loc * static_cast<acc_t>(2) - static_cast<acc_t>(1);
  return (grid + static_cast<acc_t>(1)) * (static_cast<acc_t>(size) / static_cast<acc_t>(2)) -
         static_cast<acc_t>(0.5);
}

// Fills `s` for the normalized location (loc_x, loc_y) on a height x width map (height, width >= 1).
// Returns whether a corner may lie on the map (then s.inside says which); when it returns false no
// corner does, the sample's contribution is outside_contribution(s, a), its gradients follow from
// dot = {0, 0, 0, 0}, and s.fx, s.fy are 0, or NaN where the reference's coordinate is not finite
// (the weights with them), which is all that matters of them then.
template <typename acc_t>
MSDA_HOST_DEVICE bool bilinear_sample(acc_t loc_x, acc_t loc_y, int64_t height, int64_t width,
                                      BilinearSample<acc_t>& s) {
  // continuous pixel coordinates, pixel centres at integers
  const acc_t x = loc_x * static_cast<acc_t>(width) - static_cast<acc_t>(0.5);
  const acc_t y = loc_y * static_cast<acc_t>(height) - static_cast<acc_t>(0.5);
  // x in [-1, W) and y in [-1, H): otherwise every corner is off the map (NaN fails too)
  if (!(x >= static_cast<acc_t>(-1) && x < static_cast<acc_t>(width) && y >= static_cast<acc_t>(-1) &&
        y < static_cast<acc_t>(height))) {
    const acc_t rx = reference_pixel_coordinate(loc_x, width);
    const acc_t ry = reference_pixel_coordinate(loc_y, height);
    s.fx = rx - rx;  // 0, or NaN for NaN and +-inf
    s.fy = ry - ry;
    s.weight[0] = (static_cast<acc_t>(1) - s.fy) * (static_cast<acc_t>(1) - s.fx);
    s.weight[1] = (static_cast<acc_t>(1) - s.fy) * s.fx;
    s.weight[2] = s.fy * (static_cast<acc_t>(1) - s.fx);
    s.weight[3] = s.fy * s.fx;
    s.inside[0] = s.inside[1] = s.inside[2] = s.inside[3] = false;
    s.index[0] = s.index[1] = s.index[2] = s.index[3] = 0;
    return false;
  }
#if defined(__CUDA_ARCH__)
  const acc_t x_floor = floor(x);
  const acc_t y_floor = floor(y);
#else
  const acc_t x_floor = std::floor(x);
  const acc_t y_floor = std::floor(y);
#endif
  // x0 in [-1, W - 1], y0 in [-1, H - 1]: x >= -1, and a float x below float(W) floors to at most
  // W - 1 even where float(W) rounded W up (the float below float(W) is then below W), so the
  // conversions are exact and four tests place the corners
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
  // |y0| <= H and |x0| <= W, H * W <= S (check_inputs): no overflow
  s.index[0] = y0 * width + x0;
  s.index[1] = s.index[0] + 1;
  s.index[2] = s.index[0] + width;
  s.index[3] = s.index[2] + 1;
  return true;
}

// a * sample for a sample with no corner on the map (bilinear_sample returned false): the reference
// multiplies the corners' zeros by the bilinear weights and the sample by a, so this is 0, or NaN where
// the location (NaN weights) or a is not finite. There s.fx and s.fy are 0 or NaN.
template <typename acc_t>
MSDA_HOST_DEVICE acc_t outside_contribution(const BilinearSample<acc_t>& s, acc_t a) {
  return a * (s.fx + s.fy);
}

// The gradients of a sample, F.grid_sample's backward: per channel d, with v_k the corner values (zero
// off the map), g = grad_output[d] and ga = g * a,
//   d out / d a       += (w0 v0 + w1 v1 + w2 v2 + w3 v3) * g
//   d out / d loc_x   += ((v1 - v0)(1 - fy) + (v3 - v2) fy) * ga * W
//   d out / d loc_y   += ((v2 - v0)(1 - fx) + (v3 - v1) fx) * ga * H
//   d out / d value_k += w_k * ga   (corners on the map)
// The CUDA kernel sums these terms; the CPU kernel sums dot_k = <g, v_k> first and combines them (the
// same values for finite a and g, NaNs of non-finite locations included) and takes these terms for
// a non-finite a or g, where inf * 0 and inf - inf need the reference's order.

// Sizes of the problem, read from the tensors' shapes.
struct Sizes {
  int64_t batch, spatial, heads, channels, levels, queries, points;
};

// One level: (H, W) and where it starts in S.
struct Level {
  int64_t height, width, start;
};

// The checked inputs: the sizes, and the levels (read on the host).
struct CheckedInputs {
  Sizes sizes;
  std::vector<Level> levels;
};

// The values of spatial_shapes and level_start_index against value's S, level by level, in the
// order and words of the Python check (mask2former/ops/checks.py, check_levels): H, W >= 1;
// level_start_index[l] = sum_{i < l} H_i W_i; H_l W_l fits in what is left of S (tested as
// H <= (S - start) / W, which cannot overflow int64 however large H and W are); sum_l H_l W_l = S.
// So every index the kernels form, y * W + x with 0 <= y < H, 0 <= x < W, lies inside its level and
// the level inside value. The tensors may be on the GPU: they are copied to the host (L * 3
// integers; the copy waits for the GPU).
inline std::vector<Level> check_levels(const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
                                       int64_t spatial) {
  const at::Tensor shapes_host = spatial_shapes.is_cpu() ? spatial_shapes : spatial_shapes.cpu();
  const at::Tensor starts_host = level_start_index.is_cpu() ? level_start_index : level_start_index.cpu();
  const int64_t* shapes = shapes_host.data_ptr<int64_t>();
  const int64_t* starts = starts_host.data_ptr<int64_t>();
  std::vector<Level> levels(static_cast<size_t>(spatial_shapes.size(0)));
  int64_t total = 0;  // sum of the sizes of the levels before l; <= spatial
  for (size_t l = 0; l < levels.size(); ++l) {
    const int64_t height = shapes[2 * l], width = shapes[2 * l + 1], start = starts[l];
    TORCH_CHECK_VALUE(height > 0 && width > 0,
                      "ms_deform_attn: spatial_shapes must be positive (H, W) pairs, got (H, W) = (", height, ", ",
                      width, ") (level ", l, ")");
    TORCH_CHECK_VALUE(start == total, "ms_deform_attn: level_start_index ",
                      c10::IntArrayRef(starts, static_cast<size_t>(level_start_index.numel())),
                      " is inconsistent with spatial_shapes: level ", l, " starts at ", start, ", expected ", total,
                      " (the cumulative sizes starting at 0)");
    TORCH_CHECK_VALUE(height <= (spatial - total) / width, "ms_deform_attn: value has S = ", spatial,
                      " positions but spatial_shapes give sum(H * W) > S: level ", l, ", (H, W) = (", height, ", ",
                      width, ") starting at ", start, ", does not fit");
    total += height * width;
    levels[l] = {height, width, start};
  }
  TORCH_CHECK_VALUE(total == spatial, "ms_deform_attn: value has S = ", spatial,
                    " positions but spatial_shapes give sum(H * W) = ", total);
  return levels;
}

// Checks ranks, sizes, dtypes, devices, contiguity and the levels (check_levels); returns the
// sizes and the levels. The errors are Python's ValueError (sizes, values) and TypeError (dtypes), as
// in the Python checks. The operator (mask2former/ops/op.py) makes the inputs contiguous.
inline CheckedInputs check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                  const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                                  const at::Tensor& attention_weights) {
  TORCH_CHECK_VALUE(value.dim() == 4, "ms_deform_attn: value must be 4-D (N, S, M, D), got ", value.sizes());
  TORCH_CHECK_VALUE(spatial_shapes.dim() == 2 && spatial_shapes.size(1) == 2,
                    "ms_deform_attn: spatial_shapes must be (L, 2) rows of (H, W), got ", spatial_shapes.sizes());
  TORCH_CHECK_VALUE(spatial_shapes.size(0) > 0, "ms_deform_attn: spatial_shapes has no level (L = 0)");
  TORCH_CHECK_VALUE(sampling_locations.dim() == 6 && sampling_locations.size(5) == 2,
                    "ms_deform_attn: sampling_locations must be 6-D (N, Lq, M, L, P, 2), got ",
                    sampling_locations.sizes());
  TORCH_CHECK_VALUE(attention_weights.dim() == 5,
                    "ms_deform_attn: attention_weights must be 5-D (N, Lq, M, L, P), got ", attention_weights.sizes());
  const Sizes z{value.size(0), value.size(1), value.size(2), value.size(3), spatial_shapes.size(0),
                sampling_locations.size(1), sampling_locations.size(4)};
  TORCH_CHECK_VALUE(level_start_index.dim() == 1 && level_start_index.size(0) == z.levels,
                    "ms_deform_attn: level_start_index must be (L,) with L = ", z.levels, ", got ",
                    level_start_index.sizes());
  TORCH_CHECK_VALUE(sampling_locations.size(0) == z.batch && sampling_locations.size(2) == z.heads &&
                        sampling_locations.size(3) == z.levels,
                    "ms_deform_attn: sampling_locations ", sampling_locations.sizes(), " does not match value ",
                    value.sizes(), " and spatial_shapes ", spatial_shapes.sizes());
  TORCH_CHECK_VALUE(attention_weights.size(0) == z.batch && attention_weights.size(1) == z.queries &&
                        attention_weights.size(2) == z.heads && attention_weights.size(3) == z.levels &&
                        attention_weights.size(4) == z.points,
                    "ms_deform_attn: attention_weights ", attention_weights.sizes(),
                    " does not match sampling_locations ", sampling_locations.sizes());
  TORCH_CHECK_TYPE(sampling_locations.scalar_type() == value.scalar_type() &&
                       attention_weights.scalar_type() == value.scalar_type(),
                   "ms_deform_attn: value, sampling_locations and attention_weights must have one dtype, got ",
                   value.scalar_type(), ", ", sampling_locations.scalar_type(), ", ", attention_weights.scalar_type());
  TORCH_CHECK_TYPE(spatial_shapes.scalar_type() == at::kLong && level_start_index.scalar_type() == at::kLong,
                   "ms_deform_attn: spatial_shapes and level_start_index must be int64 (the kernels' inputs), got ",
                   spatial_shapes.scalar_type(), ", ", level_start_index.scalar_type());
  for (const at::Tensor* t : {&spatial_shapes, &level_start_index, &sampling_locations, &attention_weights}) {
    TORCH_CHECK_VALUE(t->device() == value.device(), "ms_deform_attn: all inputs must be on one device, value is on ",
                      value.device(), ", another input on ", t->device());
  }
  for (const at::Tensor* t : {&value, &spatial_shapes, &level_start_index, &sampling_locations, &attention_weights}) {
    TORCH_CHECK_VALUE(t->is_contiguous(), "ms_deform_attn: the kernels take contiguous tensors");
  }
  return {z, check_levels(spatial_shapes, level_start_index, z.spatial)};
}

// The backward's grad_output: like the output, (N, Lq, M * D), value's dtype and device, contiguous.
inline void check_grad_output(const at::Tensor& grad_output, const at::Tensor& value, const Sizes& z) {
  TORCH_CHECK_VALUE(grad_output.sizes() == at::IntArrayRef({z.batch, z.queries, z.heads * z.channels}) &&
                        grad_output.device() == value.device() && grad_output.is_contiguous(),
                    "ms_deform_attn backward: grad_output must be a contiguous (N, Lq, M * D) tensor like the ",
                    "output, got ", grad_output.sizes(), " on ", grad_output.device());
  TORCH_CHECK_TYPE(grad_output.scalar_type() == value.scalar_type(),
                   "ms_deform_attn backward: grad_output must have value's dtype ", value.scalar_type(), ", got ",
                   grad_output.scalar_type());
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
