// Elementwise kernels and small reductions; their CPU twins are csrc/cpu/activation.cpp,
// optim.cpp and dense.cpp (bias). One thread per element in grid-stride loops: every output has
// exactly one writer, so these are deterministic without further care; the reductions (bias_grad,
// accuracy_count) use one block per output and a fixed tree.
#include "cuda/elementwise.h"

#include <cmath>
#include <limits>

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"
#include "fastconv/rng.h"

namespace fastconv::cuda {
namespace {

__global__ void relu_forward_kernel(float* y, const float* x, index_t count) {
  FC_GRID_LOOP(i, count) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;  // NaN < 0 is false: NaN passes, as on the CPU
  }
}

__global__ void relu_backward_kernel(float* dx, const float* dy, const float* y, index_t count) {
  FC_GRID_LOOP(i, count) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// The CPU's dropout_apply: element i kept iff bits24(key, i) >= threshold; kept elements are
// in * scale (or scale for the mask), dropped ones exactly +0 (a select: NaN and inf do not leak).
__global__ void dropout_kernel(float* out, const float* in, index_t count, std::uint64_t key,
                               std::uint32_t threshold, float scale) {
  FC_GRID_LOOP(i, count) {
    const bool keep = rng::bits24(key, static_cast<std::uint64_t>(i)) >= threshold;
    const float v = in ? __fmul_rn(in[i], scale) : scale;
    out[i] = keep ? v : 0.0f;
  }
}

void dropout_apply(float* out, const float* in, index_t count, double ratio, std::uint64_t seed) {
  if (count == 0) return;
  const std::uint64_t key = rng::stream_key(seed);
  const std::uint32_t threshold = rng::keep_threshold(ratio);
  const float scale = float(1.0 / (1.0 - ratio));  // in double, rounded once, as on the CPU
  dropout_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(out, in, count, key, threshold,
                                                             scale);
  FC_LAUNCH_CHECK();
}

__global__ void bias_add_kernel(float* y, const float* x, const float* b, index_t c,
                                index_t inner, index_t count) {
  FC_GRID_LOOP(i, count) y[i] = __fadd_rn(x[i], b[(i / inner) % c]);
}

// One block per channel ch. Thread t sums the terms e = t, t + kReduceBlock, ... of the flattened
// (sample, position) range in double; then the fixed tree. The partition depends only on the
// block size, so every run adds the same numbers in the same order.
__global__ void channel_sum_kernel(float* db, const float* dy, const float* mask, index_t n,
                                   index_t c, index_t inner) {
  __shared__ double buf[kReduceBlock];
  const index_t ch = blockIdx.x;
  const index_t terms = n * inner;
  double acc = 0.0;
  for (index_t e = threadIdx.x; e < terms; e += kReduceBlock) {
    const index_t at = ((e / inner) * c + ch) * inner + e % inner;
    const float v = dy[at];
    if (!mask || mask[at] > 0.0f) acc += static_cast<double>(v);
  }
  const double total = block_sum(acc, buf);
  if (threadIdx.x == 0) db[ch] = static_cast<float>(total);
}

// The CPU formulas with each operation rounded on its own: nvcc would otherwise contract a * b + c
// into one fused multiply-add, which rounds once and so differs from the CPU in the last bit.
__global__ void sgd_plain_kernel(float* param, const float* grad, index_t count, float lr,
                                 float weight_decay) {
  FC_GRID_LOOP(i, count) {
    const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    param[i] = __fsub_rn(param[i], __fmul_rn(lr, g));
  }
}

__global__ void sgd_momentum_kernel(float* param, float* velocity, const float* grad,
                                    index_t count, float lr, float momentum, bool nesterov,
                                    float weight_decay) {
  FC_GRID_LOOP(i, count) {
    const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    const float v = __fadd_rn(__fmul_rn(momentum, velocity[i]), g);
    velocity[i] = v;
    const float step = nesterov ? __fadd_rn(g, __fmul_rn(momentum, v)) : v;
    param[i] = __fsub_rn(param[i], __fmul_rn(lr, step));
  }
}

__global__ void adam_kernel(float* param, float* m, float* v, const float* grad, index_t count,
                            float lr, float beta1, float beta2, float eps, float weight_decay,
                            float c1, float c2, float one_b1, float one_b2) {
  FC_GRID_LOOP(i, count) {
    const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    const float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(one_b1, g));
    const float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(one_b2, __fmul_rn(g, g)));
    m[i] = mi;
    v[i] = vi;
    // param -= lr * (mi / c1) / (sqrt(vi / c2) + eps), evaluated left to right as in C++.
    const float num = __fmul_rn(lr, __fdiv_rn(mi, c1));
    const float den = __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, c2)), eps);
    param[i] = __fsub_rn(param[i], __fdiv_rn(num, den));
  }
}

// Copies whole elements as same-sized integers: the bits move, whatever the dtype.
template <typename Word>
__global__ void gather_rows_kernel(Word* out, const Word* data, const std::int64_t* indices,
                                   index_t n, index_t rows_in, index_t row,
                                   unsigned long long* first_bad) {
  FC_GRID_LOOP(e, n * row) {
    const index_t i = e / row;
    const std::int64_t src = indices[i];
    if (src < 0 || src >= rows_in) {
      // Only the error path touches an atomic, and its result (the smallest bad position) does
      // not depend on which thread gets there first.
      atomicMin(first_bad, static_cast<unsigned long long>(i));
      out[e] = Word(0);
    } else {
      out[e] = data[src * row + e % row];
    }
  }
}

// The CPU pooling's tie and NaN rule: strictly greater replaces, the first NaN wins and stays.
__device__ __forceinline__ bool better(float v, float best) { return !(v <= best) && best == best; }

__device__ __forceinline__ std::int64_t row_argmax(const float* row, index_t c) {
  float best = row[0];
  std::int64_t bi = 0;
  for (index_t j = 1; j < c; ++j) {
    if (better(row[j], best)) {
      best = row[j];
      bi = j;
    }
  }
  return bi;
}

__global__ void argmax_kernel(std::int64_t* out, const float* x, index_t n, index_t c) {
  FC_GRID_LOOP(i, n) out[i] = row_argmax(x + i * c, c);
}

// One block: integer counts add exactly in any order, but the tree keeps it simple and fixed.
__global__ void accuracy_kernel(std::int64_t* count, const float* z, const std::int64_t* labels,
                                const float* t, index_t n, index_t c) {
  __shared__ long long buf[kReduceBlock];
  long long hits = 0;
  for (index_t i = threadIdx.x; i < n; i += kReduceBlock) {
    const std::int64_t want = t ? row_argmax(t + i * c, c) : labels[i];
    hits += row_argmax(z + i * c, c) == want ? 1 : 0;
  }
  const long long total = block_sum(hits, buf);
  if (threadIdx.x == 0) *count = total;
}

template <typename T>
__global__ void fill_kernel(T* dst, index_t count, T value) {
  FC_GRID_LOOP(i, count) dst[i] = value;
}

}  // namespace

void relu_forward(float* y, const float* x, index_t count) {
  if (count == 0) return;
  relu_forward_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, x, count);
  FC_LAUNCH_CHECK();
}

void relu_backward(float* dx, const float* dy, const float* y, index_t count) {
  if (count == 0) return;
  relu_backward_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(dx, dy, y, count);
  FC_LAUNCH_CHECK();
}

void dropout_forward(float* y, const float* x, index_t count, double ratio, std::uint64_t seed) {
  dropout_apply(y, x, count, ratio, seed);
}

void dropout_backward(float* dx, const float* dy, index_t count, double ratio,
                      std::uint64_t seed) {
  dropout_apply(dx, dy, count, ratio, seed);
}

void dropout_mask(float* mask, index_t count, double ratio, std::uint64_t seed) {
  dropout_apply(mask, nullptr, count, ratio, seed);
}

void bias_add(float* y, const float* x, const float* b, index_t n, index_t c, index_t inner) {
  const index_t count = n * c * inner;
  if (count == 0) return;
  bias_add_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, x, b, c, inner, count);
  FC_LAUNCH_CHECK();
}

void bias_grad(float* db, const float* dy, const float* mask, index_t n, index_t c,
               index_t inner) {
  if (c == 0) return;
  channel_sum_kernel<<<static_cast<unsigned>(c), kReduceBlock, 0, stream()>>>(db, dy, mask, n, c,
                                                                              inner);
  FC_LAUNCH_CHECK();
}

void sgd_update(float* param, float* velocity, const float* grad, index_t count, double lr,
                double momentum, bool nesterov, double weight_decay) {
  if (count == 0) return;
  if (momentum == 0.0) {
    sgd_plain_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(param, grad, count, float(lr),
                                                                 float(weight_decay));
  } else {
    sgd_momentum_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        param, velocity, grad, count, float(lr), float(momentum), nesterov, float(weight_decay));
  }
  FC_LAUNCH_CHECK();
}

void adam_update(float* param, float* m, float* v, const float* grad, index_t count, double lr,
                 double beta1, double beta2, double eps, double weight_decay, index_t step) {
  if (count == 0) return;
  // Constants exactly as cpu::adam_update forms them: in double, rounded once to float.
  const float c1 = float(1.0 - std::pow(beta1, double(step)));
  const float c2 = float(1.0 - std::pow(beta2, double(step)));
  adam_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
      param, m, v, grad, count, float(lr), float(beta1), float(beta2), float(eps),
      float(weight_decay), c1, c2, float(1.0 - beta1), float(1.0 - beta2));
  FC_LAUNCH_CHECK();
}

index_t gather_rows(void* out, const void* data, const std::int64_t* indices, index_t n,
                    index_t rows_in, index_t row, int elem_bytes) {
  if (n == 0 || row == 0) return -1;
  DeviceArray flag({1}, DType::i64);
  const auto none = static_cast<std::int64_t>(std::numeric_limits<std::int64_t>::max());
  fill(flag.data<std::int64_t>(), 1, none);
  auto* first_bad = reinterpret_cast<unsigned long long*>(flag.data<std::int64_t>());
  const index_t count = n * row;
  if (elem_bytes == 4) {
    gather_rows_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        static_cast<std::uint32_t*>(out), static_cast<const std::uint32_t*>(data), indices, n,
        rows_in, row, first_bad);
  } else {
    gather_rows_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        static_cast<std::uint64_t*>(out), static_cast<const std::uint64_t*>(data), indices, n,
        rows_in, row, first_bad);
  }
  FC_LAUNCH_CHECK();
  std::int64_t bad = none;
  flag.copy_to_host(&bad, sizeof bad);
  return bad == none ? -1 : bad;
}

void argmax_rows(std::int64_t* out, const float* x, index_t n, index_t c) {
  if (n == 0) return;
  argmax_kernel<<<blocks_for(n), kBlock, 0, stream()>>>(out, x, n, c);
  FC_LAUNCH_CHECK();
}

void accuracy_count(std::int64_t* count, const float* z, const std::int64_t* labels,
                    const float* t, index_t n, index_t c) {
  accuracy_kernel<<<1, kReduceBlock, 0, stream()>>>(count, z, labels, t, n, c);
  FC_LAUNCH_CHECK();
}

void fill(float* dst, index_t count, float value) {
  if (count == 0) return;
  fill_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(dst, count, value);
  FC_LAUNCH_CHECK();
}

void fill(std::int64_t* dst, index_t count, std::int64_t value) {
  if (count == 0) return;
  fill_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(dst, count, value);
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
