// Multi-scale deformable attention on CUDA, forward and backward (Deformable DETR, Zhu et al.,
// ICLR 2021, Eq. 3). float32, float64, float16 and bfloat16; sums in float32 (float64 for float64).
//
// Threads work in groups of G lanes (G = D rounded up to a power of 2, at most a warp), one group
// per row (batch, query, head); lane t handles channels t, t + G, ... so a group reads each
// sampled pixel's channels together (coalesced). Forward: every lane sums its channels over the
// row's L * P samples. Backward: lanes add their channels' share into grad_value with atomics
// (into a float32 buffer for float16 / bfloat16, converted at the end), and the dot products that
// give the gradients of a sample's location and weight are summed across the group with warp
// shuffles; the group's first lane writes them (one writer per element, no atomics).
//
// The inputs are checked on the host first (check_inputs in ms_deform_attn.h: sizes, dtypes, and
// the levels against value's S without int64 overflow; spatial_shapes and level_start_index are
// copied to the host for that), so every index the kernels form lies inside value. Samples are
// computed as the reference computes them, a * (w0 v0 + w1 v1 + w2 v2 + w3 v3) with zeros for the
// corners off the map, so non-finite locations and weights give the reference's NaNs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAStream.h>  // at::cuda::getCurrentCUDAStream (CUDAContext.h would need the cuBLAS / cuSPARSE headers)
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <type_traits>

#include "../ms_deform_attn.h"

namespace mask2former {
namespace {

constexpr int kThreadsPerBlock = 256;
constexpr int kWarpSize = 32;

// The group width for D channels: a power of 2 in [1, 32].
int group_width(int64_t channels) {
  int width = 1;
  while (width < channels && width < kWarpSize) {
    width *= 2;
  }
  return width;
}

// Sum of v over the `width` lanes of this thread's group (every lane of the warp must call it).
template <typename acc_t>
__device__ __forceinline__ acc_t group_sum(acc_t v, int width) {
  for (int offset = width / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset, width);
  }
  return v;
}

struct Shape {
  int64_t rows, spatial, heads, channels, levels, queries, points;
};

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ value, const int64_t* __restrict__ spatial_shapes,
                               const int64_t* __restrict__ level_start_index, const scalar_t* __restrict__ locations,
                               const scalar_t* __restrict__ weights, scalar_t* __restrict__ output, Shape z,
                               int width) {
  using acc_t = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x % width;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / width) + threadIdx.x / width;
  if (row >= z.rows) {
    return;  // no shuffles in the forward: finished lanes may leave
  }
  const int64_t D = z.channels;
  const int64_t m = row % z.heads;
  const int64_t n = row / z.heads / z.queries;
  const int64_t pixel_stride = z.heads * D;
  const int64_t samples = z.levels * z.points;
  const scalar_t* value_nm = value + n * z.spatial * pixel_stride + m * D;
  const scalar_t* loc = locations + row * samples * 2;
  const scalar_t* attn = weights + row * samples;
  for (int64_t d = lane; d < D; d += width) {
    acc_t acc = 0;
    for (int64_t l = 0; l < z.levels; ++l) {
      const int64_t height = spatial_shapes[2 * l], w = spatial_shapes[2 * l + 1];
      const scalar_t* value_l = value_nm + level_start_index[l] * pixel_stride + d;
      for (int64_t p = 0; p < z.points; ++p) {
        const int64_t i = l * z.points + p;
        const acc_t a = static_cast<acc_t>(attn[i]);
        BilinearSample<acc_t> s;
        if (!bilinear_sample<acc_t>(static_cast<acc_t>(loc[2 * i]), static_cast<acc_t>(loc[2 * i + 1]), height, w,
                                    s)) {
          acc += outside_contribution(s, a);  // 0, or NaN for a non-finite location or weight
          continue;
        }
        acc_t sample = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const acc_t v = s.inside[k] ? static_cast<acc_t>(value_l[s.index[k] * pixel_stride]) : acc_t(0);
          sample += s.weight[k] * v;
        }
        acc += a * sample;
      }
    }
    output[row * D + d] = static_cast<scalar_t>(acc);
  }
}

// grad_value_acc: acc_t, (N, S, M, D), zero-initialized; grad_locations / grad_weights: scalar_t,
// fully written.
template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad_output, const scalar_t* __restrict__ value,
                                const int64_t* __restrict__ spatial_shapes,
                                const int64_t* __restrict__ level_start_index,
                                const scalar_t* __restrict__ locations, const scalar_t* __restrict__ weights,
                                at::opmath_type<scalar_t>* __restrict__ grad_value_acc,
                                scalar_t* __restrict__ grad_locations, scalar_t* __restrict__ grad_weights, Shape z,
                                int width) {
  using acc_t = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x % width;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / width) + threadIdx.x / width;
  // lanes past the last row keep running (with nothing to do) so that the whole warp reaches the
  // shuffles; every loop bound below is the same for all of them
  const bool active = row < z.rows;
  const int64_t safe_row = active ? row : 0;
  const int64_t D = z.channels;
  const int64_t m = safe_row % z.heads;
  const int64_t n = safe_row / z.heads / z.queries;
  const int64_t pixel_stride = z.heads * D;
  const int64_t samples = z.levels * z.points;
  const int64_t value_offset = n * z.spatial * pixel_stride + m * D;
  const scalar_t* loc = locations + safe_row * samples * 2;
  const scalar_t* attn = weights + safe_row * samples;
  const scalar_t* grad_out = grad_output + safe_row * D;
  for (int64_t l = 0; l < z.levels; ++l) {
    const int64_t height = spatial_shapes[2 * l], w = spatial_shapes[2 * l + 1];
    const int64_t level_offset = value_offset + level_start_index[l] * pixel_stride;
    for (int64_t p = 0; p < z.points; ++p) {
      const int64_t i = l * z.points + p;
      BilinearSample<acc_t> s;
      const bool any_inside = active && bilinear_sample<acc_t>(static_cast<acc_t>(loc[2 * i]),
                                                               static_cast<acc_t>(loc[2 * i + 1]), height, w, s);
      // this lane's channels' share of the reference's terms (F.grid_sample's backward; see the CPU
      // kernel): corners off the map read zero and receive nothing; NaN weights (a non-finite location)
      // and non-finite a or gradients give the reference's NaNs
      acc_t grad_weight = 0, grad_x = 0, grad_y = 0;
      if (active) {
        const acc_t a = static_cast<acc_t>(attn[i]);
        const acc_t ex = acc_t(1) - s.fx, ey = acc_t(1) - s.fy;
        for (int64_t d = lane; d < D; d += width) {
          const acc_t g = static_cast<acc_t>(grad_out[d]);
          const acc_t ga = g * a;
          acc_t v[4];
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            v[k] = acc_t(0);
            if (any_inside && s.inside[k]) {
              const int64_t idx = level_offset + s.index[k] * pixel_stride + d;
              v[k] = static_cast<acc_t>(value[idx]);
              gpuAtomicAdd(grad_value_acc + idx, s.weight[k] * ga);
            }
          }
          grad_weight += (s.weight[0] * v[0] + s.weight[1] * v[1] + s.weight[2] * v[2] + s.weight[3] * v[3]) * g;
          grad_x += ((v[1] - v[0]) * ey + (v[3] - v[2]) * s.fy) * ga;
          grad_y += ((v[2] - v[0]) * ex + (v[3] - v[1]) * s.fx) * ga;
        }
      }
      grad_weight = group_sum(grad_weight, width);
      grad_x = group_sum(grad_x, width);
      grad_y = group_sum(grad_y, width);
      if (active && lane == 0) {
        grad_weights[row * samples + i] = static_cast<scalar_t>(grad_weight);
        grad_locations[(row * samples + i) * 2] = static_cast<scalar_t>(grad_x * static_cast<acc_t>(w));
        grad_locations[(row * samples + i) * 2 + 1] = static_cast<scalar_t>(grad_y * static_cast<acc_t>(height));
      }
    }
  }
}

// Blocks for `rows` groups of `width` lanes (at most the grid's x limit, 2^31 - 1).
int64_t grid_size(int64_t rows, int width) {
  const int64_t rows_per_block = kThreadsPerBlock / width;
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  TORCH_CHECK(blocks <= 2147483647, "ms_deform_attn CUDA kernel: ", rows,
              " (batch, query, head) rows are too many for one launch");
  return blocks;
}

Shape shape_of(const Sizes& z) {
  return Shape{z.batch * z.queries * z.heads, z.spatial, z.heads, z.channels, z.levels, z.queries, z.points};
}

void check_cuda(const at::Tensor& value) {
  TORCH_CHECK(value.is_cuda(), "ms_deform_attn CUDA kernel: the inputs are on ", value.device());
}

}  // namespace

at::Tensor ms_deform_attn_forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                       const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                                       const at::Tensor& attention_weights) {
  check_cuda(value);
  const c10::cuda::CUDAGuard device_guard(value.device());
  const Sizes sizes =
      check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights).sizes;
  at::Tensor output = at::empty({sizes.batch, sizes.queries, sizes.heads * sizes.channels}, value.options());
  const Shape z = shape_of(sizes);
  if (z.rows == 0 || z.channels == 0) {
    return output.zero_();
  }
  const int width = group_width(z.channels);
  const int64_t blocks = grid_size(z.rows, width);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, value.scalar_type(),
                                  "ms_deform_attn_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks, kThreadsPerBlock, 0, stream>>>(
        value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(), level_start_index.data_ptr<int64_t>(),
        sampling_locations.data_ptr<scalar_t>(), attention_weights.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(),
        z, width);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& value, const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index, const at::Tensor& sampling_locations, const at::Tensor& attention_weights) {
  check_cuda(value);
  const c10::cuda::CUDAGuard device_guard(value.device());
  const Sizes sizes =
      check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights).sizes;
  check_grad_output(grad_output, value, sizes);
  // the atomics add in float32 (float64 for float64): half-precision atomics would lose the sum
  const at::ScalarType acc_type = at::toOpMathType(value.scalar_type());
  at::Tensor grad_value_acc = at::zeros(value.sizes(), value.options().dtype(acc_type));
  at::Tensor grad_locations = at::empty_like(sampling_locations);
  at::Tensor grad_weights = at::empty_like(attention_weights);
  const Shape z = shape_of(sizes);
  if (z.rows > 0 && z.channels > 0) {
    const int width = group_width(z.channels);
    const int64_t blocks = grid_size(z.rows, width);
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, value.scalar_type(),
                                    "ms_deform_attn_backward_cuda", [&] {
      backward_kernel<scalar_t><<<blocks, kThreadsPerBlock, 0, stream>>>(
          grad_output.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
          level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<scalar_t>(),
          attention_weights.data_ptr<scalar_t>(), grad_value_acc.data_ptr<at::opmath_type<scalar_t>>(),
          grad_locations.data_ptr<scalar_t>(), grad_weights.data_ptr<scalar_t>(), z, width);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  } else {
    grad_locations.zero_();
    grad_weights.zero_();
  }
  at::Tensor grad_value =
      grad_value_acc.scalar_type() == value.scalar_type() ? grad_value_acc : grad_value_acc.to(value.scalar_type());
  return {grad_value, grad_locations, grad_weights};
}

}  // namespace mask2former
