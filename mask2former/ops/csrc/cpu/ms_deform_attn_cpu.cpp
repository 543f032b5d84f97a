// Multi-scale deformable attention on the CPU, forward and backward (Deformable DETR, Zhu et al.,
// ICLR 2021, Eq. 3). float32, float64 and bfloat16 (accumulated in float32).
//
// Forward: parallel over rows (batch x query x head); a row accumulates its L * P weighted
// bilinear samples over the D channels of its head. The loops over D are innermost (D is
// contiguous in value, output and the gradients) and vectorize.
//
// Backward: grad_value receives scattered additions from every query that samples a pixel, so
// the work is split by ownership: a task owns one (batch, head) pair and a range of queries, and
// adds into a grad_value slice no other task writes (the pair's own slice when one task covers all
// its queries, else a private buffer summed afterwards). grad_locations and grad_weights belong to
// one row each and are written directly.
//
// Non-finite inputs give the reference's NaNs (ms_deform_attn.h). Non-finite locations come out of
// the usual arithmetic; a row with a non-finite attention weight (forward, backward) or output
// gradient (backward), and in the forward a row with a non-finite location, is computed (again) by a
// rare path in the reference's order of operations, where inf * 0 and inf - inf decide the result.
// The rare paths are separate, non-inlined functions called per row: a call inside the hot loops
// would cost them their accumulators in registers.
//
// Speed: the per-row bodies are instantiated for the common head widths (D = 16, 32, 64: the
// accumulators stay in registers) and for any D, and, on x86-64 with GCC or Clang, compiled twice:
// for the baseline ISA and for AVX2 + FMA, chosen at run time from the processor's features
// (ATEN_CPU_CAPABILITY=default, torch's own switch, keeps the baseline).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../ms_deform_attn.h"

#if defined(__GNUC__) || defined(__clang__)
#define MSDA_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define MSDA_NOINLINE __declspec(noinline)
#else
#define MSDA_NOINLINE
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define MSDA_AVX2_VARIANT 1
#define MSDA_ALWAYS_INLINE inline __attribute__((always_inline))
#define MSDA_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define MSDA_AVX2_VARIANT 0
#if defined(__GNUC__) || defined(__clang__)
#define MSDA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MSDA_ALWAYS_INLINE inline
#endif
#endif

namespace mask2former {
namespace {

// The inputs of one call, shared by the forward and backward bodies.
template <typename scalar_t>
struct Problem {
  const scalar_t* value;
  const Level* levels;
  const scalar_t* locations;
  const scalar_t* weights;
  Sizes z;
};

// Row r's output in the reference's order of operations, out[d] = sum_{l, p} a * (sum_k w_k v_k[d]) with
// zeros for the corners off the map: for the rows with a non-finite attention weight (where the fast
// path's corner-by-corner products would turn inf * 0 and inf - inf into other NaNs and infinities
// than the reference's) or a non-finite location off the map (NaN bilinear weights times zeros).
// Rare, and kept out of the hot loop (there it would cost the loop its accumulators in registers).
template <typename scalar_t>
MSDA_NOINLINE void forward_row_reference_order(const Problem<scalar_t>& pb, int64_t r, scalar_t* out) {
  using acc_t = at::opmath_type<scalar_t>;
  const Sizes& z = pb.z;
  const int64_t D = z.channels, M = z.heads, P = z.points;
  const int64_t pixel_stride = M * D;
  const int64_t samples_per_row = z.levels * P;
  const scalar_t* value_nm = pb.value + (r / M / z.queries) * z.spatial * pixel_stride + (r % M) * D;
  const scalar_t* loc = pb.locations + r * samples_per_row * 2;
  const scalar_t* attn = pb.weights + r * samples_per_row;
  std::vector<acc_t> acc(D, acc_t(0));
  for (int64_t l = 0; l < z.levels; ++l) {
    const Level lv = pb.levels[l];
    const scalar_t* value_l = value_nm + lv.start * pixel_stride;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t i = l * P + p;
      const acc_t a = attn[i];
      BilinearSample<acc_t> s;
      if (!bilinear_sample<acc_t>(loc[2 * i], loc[2 * i + 1], lv.height, lv.width, s)) {
        const acc_t c = outside_contribution(s, a);  // a * (sum_k w_k * 0)
        for (int64_t d = 0; d < D; ++d) {
          acc[d] += c;
        }
        continue;
      }
      for (int64_t d = 0; d < D; ++d) {
        acc_t sample = 0;
        for (int k = 0; k < 4; ++k) {
          sample += s.weight[k] * (s.inside[k] ? static_cast<acc_t>(value_l[s.index[k] * pixel_stride + d]) : acc_t(0));
        }
        acc[d] += a * sample;
      }
    }
  }
  for (int64_t d = 0; d < D; ++d) {
    out[d] = static_cast<scalar_t>(acc[d]);
  }
}

// out[r] for rows [begin, end). kD > 0: D = kD known at compile time; kD = 0: D = z.channels.
template <typename scalar_t, int64_t kD>
MSDA_ALWAYS_INLINE void forward_rows(const Problem<scalar_t>& pb, scalar_t* output, int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const Sizes& z = pb.z;
  const int64_t D = kD > 0 ? kD : z.channels;
  const int64_t M = z.heads, P = z.points;
  const int64_t pixel_stride = M * D;  // between neighbouring pixels of one head's map
  const int64_t samples_per_row = z.levels * P;
  acc_t fixed[kD > 0 ? kD : 1];
  std::vector<acc_t> dynamic(kD > 0 ? 0 : D);
  acc_t* acc = kD > 0 ? fixed : dynamic.data();
  for (int64_t r = begin; r < end; ++r) {
    const int64_t m = r % M;
    const int64_t n = r / M / z.queries;
    const scalar_t* value_nm = pb.value + n * z.spatial * pixel_stride + m * D;
    const scalar_t* loc = pb.locations + r * samples_per_row * 2;
    const scalar_t* attn = pb.weights + r * samples_per_row;
    // NaN when the row has a non-finite weight, or a sample off the map with a non-finite location
    // (outside_contribution): the row is then computed again in the reference's order. (With finite
    // weights the corner-by-corner sum gives the reference's infinities and NaNs of non-finite values.)
    // Kept in one scalar, and the rare path called after the row: the accumulators stay in registers.
    acc_t poison = 0;
    for (int64_t d = 0; d < D; ++d) {
      acc[d] = 0;
    }
    for (int64_t l = 0; l < z.levels; ++l) {
      const Level lv = pb.levels[l];
      const scalar_t* value_l = value_nm + lv.start * pixel_stride;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = l * P + p;
        const acc_t a = attn[i];
        BilinearSample<acc_t> s;
        if (!bilinear_sample<acc_t>(loc[2 * i], loc[2 * i + 1], lv.height, lv.width, s)) {
          poison += outside_contribution(s, a);
          continue;
        }
        poison += a * acc_t(0);
        for (int k = 0; k < 4; ++k) {
          if (s.inside[k]) {
            const acc_t c = a * s.weight[k];
            const scalar_t* v = value_l + s.index[k] * pixel_stride;
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) {
              acc[d] += c * static_cast<acc_t>(v[d]);
            }
          }
        }
      }
    }
    scalar_t* out = output + r * D;
    for (int64_t d = 0; d < D; ++d) {
      out[d] = static_cast<scalar_t>(acc[d]);
    }
    if (poison != acc_t(0)) {  // NaN
      forward_row_reference_order(pb, r, out);
    }
  }
}

// The gradient of a sample with respect to its normalized location from dot[k] = <g, corner k> (zero
// for corners off the map), scaled by the attention weight a: (d/dx, d/dy). Equal to the reference's
// per-channel sums (ms_deform_attn.h) for finite a and g, NaNs of non-finite locations included.
template <typename acc_t>
inline void location_gradient(const BilinearSample<acc_t>& s, const acc_t dot[4], acc_t a, int64_t height,
                              int64_t width, acc_t& grad_x, acc_t& grad_y) {
  const acc_t ex = acc_t(1) - s.fx, ey = acc_t(1) - s.fy;
  grad_x = a * static_cast<acc_t>(width) * (ey * (dot[1] - dot[0]) + s.fy * (dot[3] - dot[2]));
  grad_y = a * static_cast<acc_t>(height) * (ex * (dot[2] - dot[0]) + s.fx * (dot[3] - dot[1]));
}

// The gradients of row r from the reference's terms, channel by channel (ms_deform_attn.h): for the
// rows with a non-finite attention weight or output gradient, where inf * 0 and inf - inf need the
// reference's order. Adds w_k * g * a into the sink rows of the corners on the map, writes the row's
// grad_locations and grad_weights. Rare, and kept out of the hot loop (a call there would cost the
// loop its registers).
template <typename scalar_t>
MSDA_NOINLINE void backward_row_reference_order(const Problem<scalar_t>& pb, const scalar_t* grad_output_row,
                                                const scalar_t* value_nm, at::opmath_type<scalar_t>* sink,
                                                int64_t sink_stride, scalar_t* grad_loc, scalar_t* grad_attn,
                                                int64_t r) {
  using acc_t = at::opmath_type<scalar_t>;
  const Sizes& z = pb.z;
  const int64_t D = z.channels, P = z.points;
  const int64_t pixel_stride = z.heads * D;
  const int64_t samples_per_row = z.levels * P;
  const scalar_t* loc = pb.locations + r * samples_per_row * 2;
  const scalar_t* attn = pb.weights + r * samples_per_row;
  for (int64_t l = 0; l < z.levels; ++l) {
    const Level lv = pb.levels[l];
    const scalar_t* value_l = value_nm + lv.start * pixel_stride;
    acc_t* sink_l = sink + lv.start * sink_stride;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t i = l * P + p;
      const acc_t a = attn[i];
      BilinearSample<acc_t> s;
      bilinear_sample<acc_t>(loc[2 * i], loc[2 * i + 1], lv.height, lv.width, s);  // fills s either way
      const acc_t ex = acc_t(1) - s.fx, ey = acc_t(1) - s.fy;
      acc_t grad_weight = 0, grad_x = 0, grad_y = 0;
      for (int64_t d = 0; d < D; ++d) {
        const acc_t g = static_cast<acc_t>(grad_output_row[d]);
        const acc_t ga = g * a;
        acc_t v[4];
        for (int k = 0; k < 4; ++k) {
          v[k] = acc_t(0);
          if (s.inside[k]) {
            v[k] = static_cast<acc_t>(value_l[s.index[k] * pixel_stride + d]);
            sink_l[s.index[k] * sink_stride + d] += s.weight[k] * ga;
          }
        }
        grad_weight += (s.weight[0] * v[0] + s.weight[1] * v[1] + s.weight[2] * v[2] + s.weight[3] * v[3]) * g;
        grad_x += ((v[1] - v[0]) * ey + (v[3] - v[2]) * s.fy) * ga;
        grad_y += ((v[2] - v[0]) * ex + (v[3] - v[1]) * s.fx) * ga;
      }
      grad_attn[i] = static_cast<scalar_t>(grad_weight);
      grad_loc[2 * i] = static_cast<scalar_t>(grad_x * static_cast<acc_t>(lv.width));
      grad_loc[2 * i + 1] = static_cast<scalar_t>(grad_y * static_cast<acc_t>(lv.height));
    }
  }
}

// The gradients of the rows of pair (n, m), queries [q_begin, q_end): grad_value into
// sink + pixel * sink_stride (acc_t), grad_locations and grad_weights in place. Corner by corner:
// dot[k] = <g, corner k> and g * a * w_k into grad_value for the corners on the map, then the
// weight's and the location's gradients from the four dot products (the reference's values, NaNs
// of non-finite locations included, for finite a and g; backward_row_reference_order otherwise).
template <typename scalar_t, int64_t kD>
MSDA_ALWAYS_INLINE void backward_queries(const Problem<scalar_t>& pb, const scalar_t* grad_output,
                                         at::opmath_type<scalar_t>* sink, int64_t sink_stride,
                                         scalar_t* grad_locations, scalar_t* grad_weights, int64_t n, int64_t m,
                                         int64_t q_begin, int64_t q_end) {
  using acc_t = at::opmath_type<scalar_t>;
  const Sizes& z = pb.z;
  const int64_t D = kD > 0 ? kD : z.channels;
  const int64_t M = z.heads, P = z.points;
  const int64_t pixel_stride = M * D;
  const int64_t samples_per_row = z.levels * P;
  const scalar_t* value_nm = pb.value + n * z.spatial * pixel_stride + m * D;
  acc_t fixed[kD > 0 ? kD : 1];
  std::vector<acc_t> dynamic(kD > 0 ? 0 : D);
  acc_t* g = kD > 0 ? fixed : dynamic.data();
  for (int64_t q = q_begin; q < q_end; ++q) {
    const int64_t r = (n * z.queries + q) * M + m;
    const scalar_t* go = grad_output + r * D;
    const scalar_t* loc = pb.locations + r * samples_per_row * 2;
    const scalar_t* attn = pb.weights + r * samples_per_row;
    scalar_t* grad_loc = grad_locations + r * samples_per_row * 2;
    scalar_t* grad_attn = grad_weights + r * samples_per_row;
    acc_t check = 0;  // NaN when a weight or an output gradient of the row is not finite
    for (int64_t i = 0; i < samples_per_row; ++i) {
      check += static_cast<acc_t>(attn[i]) * acc_t(0);
    }
    for (int64_t d = 0; d < D; ++d) {
      check += static_cast<acc_t>(go[d]) * acc_t(0);
    }
    if (check != acc_t(0)) {
      backward_row_reference_order(pb, go, value_nm, sink, sink_stride, grad_loc, grad_attn, r);
      continue;
    }
    for (int64_t d = 0; d < D; ++d) {
      g[d] = static_cast<acc_t>(go[d]);
    }
    for (int64_t l = 0; l < z.levels; ++l) {
      const Level lv = pb.levels[l];
      const scalar_t* value_l = value_nm + lv.start * pixel_stride;
      acc_t* sink_l = sink + lv.start * sink_stride;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = l * P + p;
        BilinearSample<acc_t> s;
        const acc_t a = attn[i];
        if (!bilinear_sample<acc_t>(loc[2 * i], loc[2 * i + 1], lv.height, lv.width, s)) {
          // no corner on the map: 0, or NaN for a non-finite location (s.fx, s.fy are 0 or NaN)
          grad_attn[i] = static_cast<scalar_t>(s.fx + s.fy);
          grad_loc[2 * i] = static_cast<scalar_t>(a * s.fy);
          grad_loc[2 * i + 1] = static_cast<scalar_t>(a * s.fx);
          continue;
        }
        acc_t dot[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4; ++k) {
          if (s.inside[k]) {
            const acc_t c = a * s.weight[k];
            const scalar_t* v = value_l + s.index[k] * pixel_stride;
            acc_t* gv = sink_l + s.index[k] * sink_stride;
            acc_t sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t d = 0; d < D; ++d) {
              sum += g[d] * static_cast<acc_t>(v[d]);
              gv[d] += c * g[d];
            }
            dot[k] = sum;
          }
        }
        acc_t grad_x, grad_y;
        location_gradient(s, dot, a, lv.height, lv.width, grad_x, grad_y);
        grad_attn[i] = static_cast<scalar_t>(s.weight[0] * dot[0] + s.weight[1] * dot[1] + s.weight[2] * dot[2] +
                                             s.weight[3] * dot[3]);
        grad_loc[2 * i] = static_cast<scalar_t>(grad_x);
        grad_loc[2 * i + 1] = static_cast<scalar_t>(grad_y);
      }
    }
  }
}

template <typename scalar_t>
using ForwardFn = void (*)(const Problem<scalar_t>&, scalar_t*, int64_t, int64_t);
template <typename scalar_t>
using BackwardFn = void (*)(const Problem<scalar_t>&, const scalar_t*, at::opmath_type<scalar_t>*, int64_t, scalar_t*,
                            scalar_t*, int64_t, int64_t, int64_t, int64_t);

// The bodies compiled for the baseline ISA ...
template <typename scalar_t, int64_t kD>
void forward_baseline(const Problem<scalar_t>& pb, scalar_t* output, int64_t begin, int64_t end) {
  forward_rows<scalar_t, kD>(pb, output, begin, end);
}
template <typename scalar_t, int64_t kD>
void backward_baseline(const Problem<scalar_t>& pb, const scalar_t* grad_output, at::opmath_type<scalar_t>* sink,
                       int64_t sink_stride, scalar_t* grad_locations, scalar_t* grad_weights, int64_t n, int64_t m,
                       int64_t q_begin, int64_t q_end) {
  backward_queries<scalar_t, kD>(pb, grad_output, sink, sink_stride, grad_locations, grad_weights, n, m, q_begin,
                                 q_end);
}

#if MSDA_AVX2_VARIANT
// ... and for AVX2 + FMA (the same source, inlined into functions compiled for that target)
template <typename scalar_t, int64_t kD>
MSDA_TARGET_AVX2 void forward_avx2(const Problem<scalar_t>& pb, scalar_t* output, int64_t begin, int64_t end) {
  forward_rows<scalar_t, kD>(pb, output, begin, end);
}
template <typename scalar_t, int64_t kD>
MSDA_TARGET_AVX2 void backward_avx2(const Problem<scalar_t>& pb, const scalar_t* grad_output,
                                    at::opmath_type<scalar_t>* sink, int64_t sink_stride, scalar_t* grad_locations,
                                    scalar_t* grad_weights, int64_t n, int64_t m, int64_t q_begin, int64_t q_end) {
  backward_queries<scalar_t, kD>(pb, grad_output, sink, sink_stride, grad_locations, grad_weights, n, m, q_begin,
                                 q_end);
}
#endif

// Whether the AVX2 + FMA bodies run: the processor has both, and torch's ATEN_CPU_CAPABILITY does
// not ask for the baseline ("default").
bool use_avx2() {
#if MSDA_AVX2_VARIANT
  static const bool enabled = [] {
    const char* capability = std::getenv("ATEN_CPU_CAPABILITY");
    if (capability != nullptr && std::strcmp(capability, "default") == 0) {
      return false;
    }
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return enabled;
#else
  return false;
#endif
}

template <typename scalar_t, int64_t kD>
ForwardFn<scalar_t> forward_variant() {
#if MSDA_AVX2_VARIANT
  if (use_avx2()) {
    return &forward_avx2<scalar_t, kD>;
  }
#endif
  return &forward_baseline<scalar_t, kD>;
}

template <typename scalar_t, int64_t kD>
BackwardFn<scalar_t> backward_variant() {
#if MSDA_AVX2_VARIANT
  if (use_avx2()) {
    return &backward_avx2<scalar_t, kD>;
  }
#endif
  return &backward_baseline<scalar_t, kD>;
}

template <typename scalar_t>
ForwardFn<scalar_t> pick_forward(int64_t channels) {
  switch (channels) {
    case 16: return forward_variant<scalar_t, 16>();
    case 32: return forward_variant<scalar_t, 32>();
    case 64: return forward_variant<scalar_t, 64>();
    default: return forward_variant<scalar_t, 0>();
  }
}

template <typename scalar_t>
BackwardFn<scalar_t> pick_backward(int64_t channels) {
  switch (channels) {
    case 16: return backward_variant<scalar_t, 16>();
    case 32: return backward_variant<scalar_t, 32>();
    case 64: return backward_variant<scalar_t, 64>();
    default: return backward_variant<scalar_t, 0>();
  }
}

template <typename scalar_t>
void forward_kernel(const Problem<scalar_t>& pb, scalar_t* output) {
  const Sizes& z = pb.z;
  const int64_t rows = z.batch * z.queries * z.heads;
  // enough rows per task that a task's overhead is amortized
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, z.levels * z.points * z.channels));
  const ForwardFn<scalar_t> body = pick_forward<scalar_t>(z.channels);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) { body(pb, output, begin, end); });
}

// Query ranges per (batch, head) pair: 1 when the pairs alone keep every thread busy, else enough
// ranges for all threads, each of at least 64 queries.
int64_t query_chunks(const Sizes& z) {
  const int64_t pairs = z.batch * z.heads;
  const int64_t threads = at::get_num_threads();
  if (pairs == 0 || pairs >= threads) {
    return 1;
  }
  const int64_t min_queries_per_chunk = 64;
  const int64_t wanted = (threads + pairs - 1) / pairs;
  return std::max<int64_t>(1, std::min(wanted, z.queries / min_queries_per_chunk));
}

template <typename scalar_t>
void backward_kernel(const Problem<scalar_t>& pb, const scalar_t* grad_output, at::Tensor& grad_value,
                     scalar_t* grad_locations, scalar_t* grad_weights) {
  using acc_t = at::opmath_type<scalar_t>;
  const Sizes& z = pb.z;
  const int64_t D = z.channels, M = z.heads, S = z.spatial;
  const int64_t pixel_stride = M * D;
  const int64_t pairs = z.batch * M;
  const int64_t chunks = query_chunks(z);
  const int64_t queries_per_chunk = (z.queries + chunks - 1) / chunks;
  // float32 / float64 with one task per pair add straight into grad_value (zero-initialized);
  // otherwise each task adds into an (S, D) acc_t buffer: one per thread, copied out after each
  // task (one chunk), or one per task in `partials`, summed afterwards (several chunks)
  const bool direct = chunks == 1 && std::is_same<scalar_t, acc_t>::value;
  at::Tensor partials;
  if (chunks > 1) {
    partials = at::zeros({pairs * chunks, S, D}, grad_value.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  }
  scalar_t* grad_value_ptr = grad_value.data_ptr<scalar_t>();
  if (D == 0) {  // no channel: every gradient is an empty sum (grad_value is empty)
    std::fill_n(grad_locations, z.batch * z.queries * M * z.levels * z.points * 2, scalar_t(0));
    std::fill_n(grad_weights, z.batch * z.queries * M * z.levels * z.points, scalar_t(0));
    return;
  }
  const BackwardFn<scalar_t> body = pick_backward<scalar_t>(D);

  at::parallel_for(0, pairs * chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> local;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t pair = task / chunks, chunk = task % chunks;
      const int64_t n = pair / M, m = pair % M;
      acc_t* sink;
      int64_t sink_stride;
      if (direct) {
        sink = reinterpret_cast<acc_t*>(grad_value_ptr) + n * S * pixel_stride + m * D;
        sink_stride = pixel_stride;
      } else if (chunks == 1) {
        local.assign(S * D, acc_t(0));
        sink = local.data();
        sink_stride = D;
      } else {
        sink = partials.data_ptr<acc_t>() + task * S * D;
        sink_stride = D;
      }
      const int64_t q_begin = std::min(z.queries, chunk * queries_per_chunk);
      const int64_t q_end = std::min(z.queries, q_begin + queries_per_chunk);
      body(pb, grad_output, sink, sink_stride, grad_locations, grad_weights, n, m, q_begin, q_end);
      if (!direct && chunks == 1) {
        scalar_t* out = grad_value_ptr + n * S * pixel_stride + m * D;
        for (int64_t s = 0; s < S; ++s) {
          for (int64_t d = 0; d < D; ++d) {
            out[s * pixel_stride + d] = static_cast<scalar_t>(local[s * D + d]);
          }
        }
      }
    }
  });

  if (chunks > 1) {
    // sum each pair's chunks into its grad_value slice, in parallel over (pair, pixel)
    const acc_t* part = partials.data_ptr<acc_t>();
    at::parallel_for(0, pairs * S, 256, [&](int64_t begin, int64_t end) {
      for (int64_t ps = begin; ps < end; ++ps) {
        const int64_t pair = ps / S, s = ps % S;
        const int64_t n = pair / M, m = pair % M;
        scalar_t* out = grad_value_ptr + (n * S + s) * pixel_stride + m * D;
        for (int64_t d = 0; d < D; ++d) {
          acc_t total = 0;
          for (int64_t c = 0; c < chunks; ++c) {
            total += part[((pair * chunks + c) * S + s) * D + d];
          }
          out[d] = static_cast<scalar_t>(total);
        }
      }
    });
  }
}

void check_cpu(const at::Tensor& value) {
  TORCH_CHECK(value.device().is_cpu(), "ms_deform_attn CPU kernel: the inputs are on ", value.device());
}

}  // namespace

at::Tensor ms_deform_attn_forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights) {
  check_cpu(value);
  const CheckedInputs in =
      check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  const Sizes& z = in.sizes;
  at::Tensor output = at::empty({z.batch, z.queries, z.heads * z.channels}, value.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::ScalarType::BFloat16, value.scalar_type(), "ms_deform_attn_forward_cpu", [&] {
    const Problem<scalar_t> pb{value.data_ptr<scalar_t>(), in.levels.data(), sampling_locations.data_ptr<scalar_t>(),
                               attention_weights.data_ptr<scalar_t>(), z};
    forward_kernel<scalar_t>(pb, output.data_ptr<scalar_t>());
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& value, const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index, const at::Tensor& sampling_locations, const at::Tensor& attention_weights) {
  check_cpu(value);
  const CheckedInputs in =
      check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  const Sizes& z = in.sizes;
  check_grad_output(grad_output, value, z);
  at::Tensor grad_value = at::zeros_like(value);
  at::Tensor grad_locations = at::empty_like(sampling_locations);
  at::Tensor grad_weights = at::empty_like(attention_weights);
  AT_DISPATCH_FLOATING_TYPES_AND(at::ScalarType::BFloat16, value.scalar_type(), "ms_deform_attn_backward_cpu", [&] {
    const Problem<scalar_t> pb{value.data_ptr<scalar_t>(), in.levels.data(), sampling_locations.data_ptr<scalar_t>(),
                               attention_weights.data_ptr<scalar_t>(), z};
    backward_kernel<scalar_t>(pb, grad_output.data_ptr<scalar_t>(), grad_value, grad_locations.data_ptr<scalar_t>(),
                              grad_weights.data_ptr<scalar_t>());
  });
  return {grad_value, grad_locations, grad_weights};
}

}  // namespace mask2former
