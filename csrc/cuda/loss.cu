// Softmax cross-entropy on the GPU, the twin of csrc/cpu/loss.cpp.
//
// Launch: one warp per row, kRowWarps warps a block, blocks looping over rows (grid-stride), so
// a row's lanes always run together and may shuffle. Each lane walks columns lane, lane + 32, ...
// keeping an online (max m, sum s of exp(z - m)); the lanes are merged by an xor butterfly. Then:
//   forward:  the row's loss in logsumexp form into a per-row buffer; one block reduces the
//             buffer to the mean in a fixed tree (no atomics on the loss);
//   backward: a second pass writes dz from exp(z - m), the merged s and the targets.
// Determinism: each lane's terms and the butterfly's pairing are fixed by the lane number, and
// each butterfly step adds the same two values on both partners (float + commutes), so every run
// and every lane sees the same bits. The only atomic is the bad-target flag (an atomicMin of a
// row number, or of a flat index i * c + j for a bad weight: its final value does not depend on
// the order).
#include "cuda/loss.h"

#include <cfloat>
#include <optional>
#include <type_traits>
#include <vector>

#include "cuda/device_array.h"
#include "cuda/fill.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// s * exp(mi - m) with an empty part (s == 0, e.g. a lane with no columns, m = -inf) adding
// exactly 0 instead of 0 * exp(-inf + inf) = NaN.
__device__ __forceinline__ float rescale(float s, float mi, float m) {
  return s == 0.0f ? 0.0f : s * expf(mi - m);
}

struct MaxSum {
  float m, s;
};

// The row's max and sum of exp(z - max), on every lane of the warp.
__device__ __forceinline__ MaxSum row_max_sum(const float* zi, index_t c, int lane) {
  float m = -INFINITY, s = 0.0f;
  for (index_t j = lane; j < c; j += kWarp) {
    const float v = zi[j];
    if (v > m) {
      s = rescale(s, m, v) + 1.0f;
      m = v;
    } else if (v != -INFINITY) {
      s += expf(v - m);  // NaN logits land here and make s NaN: the loss propagates NaN
    }
  }
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    const float mn = fmaxf(m, m2);
    s = rescale(s, m, mn) + rescale(s2, m2, mn);
    m = mn;
  }
  return {m, s};
}

__device__ __forceinline__ bool bad_label(std::int64_t y, index_t c) { return y < 0 || y >= c; }

// A target weight must be finite and >= 0 (NaN fails both comparisons).
__device__ __forceinline__ bool bad_weight(float w) { return !(w >= 0.0f && w <= FLT_MAX); }

__device__ __forceinline__ void report_bad_row(unsigned long long* first_bad, index_t row) {
  atomicMin(first_bad, static_cast<unsigned long long>(row));
}

// Rows handled by this warp: row, row + all warps, ...
#define FC_ROW_LOOP(row, n)                                                            \
  for (index_t row = blockIdx.x * index_t(kRowWarps) + threadIdx.x / kWarp; row < (n); \
       row += index_t(gridDim.x) * kRowWarps)

// One row's loss and gradient, shared by the forward, backward and fused kernels so that all
// three compile each expression alike (nvcc contracts the same products into the same FMAs) and
// the fused kernel gives the separate kernels' bits. Bad weights are reported by their flat index
// i * c + j (the first one in row-major order).
__device__ __forceinline__ float dense_row_loss(const float* zi, const float* ti, index_t i,
                                                index_t c, int lane, MaxSum ms,
                                                unsigned long long* first_bad) {
  const float lse = logf(ms.s);
  float acc = 0.0f;
  // Zero weights are skipped so a -inf logit off the target gives 0, not 0 * inf = NaN.
  for (index_t j = lane; j < c; j += kWarp) {
    if (bad_weight(ti[j])) report_bad_row(first_bad, i * c + j);
    acc += ti[j] == 0.0f ? 0.0f : ti[j] * ((ms.m - zi[j]) + lse);
  }
  return warp_sum(acc);
}

// Soft targets need not sum to 1: d/dz of sum_c t_c * (lse - z_c) is tsum * softmax - t.
__device__ __forceinline__ void dense_row_grad(float* di, const float* zi, const float* ti,
                                               index_t i, index_t c, int lane, MaxSum ms,
                                               float scale, unsigned long long* first_bad) {
  float tsum = 0.0f;
  for (index_t j = lane; j < c; j += kWarp) {
    if (bad_weight(ti[j])) report_bad_row(first_bad, i * c + j);
    tsum += ti[j];
  }
  tsum = warp_sum(tsum);
  const float p = tsum / ms.s;
  for (index_t j = lane; j < c; j += kWarp) di[j] = (expf(zi[j] - ms.m) * p - ti[j]) * scale;
}

// A bad label makes the row's loss NaN and matches no column of the gradient.
__device__ __forceinline__ float labels_row_loss(const float* zi, std::int64_t y, index_t i,
                                                 index_t c, MaxSum ms,
                                                 unsigned long long* first_bad) {
  if (bad_label(y, c)) {
    report_bad_row(first_bad, i);
    return NAN;
  }
  return (ms.m - zi[y]) + logf(ms.s);
}

// The dense form with a one-hot row (tsum = 1).
__device__ __forceinline__ void labels_row_grad(float* di, const float* zi, std::int64_t y,
                                                index_t i, index_t c, int lane, MaxSum ms,
                                                float scale, unsigned long long* first_bad) {
  if (lane == 0 && bad_label(y, c)) report_bad_row(first_bad, i);
  const float p = 1.0f / ms.s;
  for (index_t j = lane; j < c; j += kWarp)
    di[j] = (expf(zi[j] - ms.m) * p - (j == y ? 1.0f : 0.0f)) * scale;
}

// rows (n) are each row's loss (mean_kernel averages them); dz (n, c) the gradient. Either may
// be null: forward, backward, or both from one read of z and one max/sum per row.
__global__ void dense_kernel(float* rows, float* dz, const float* z, const float* t, float scale,
                             index_t n, index_t c, unsigned long long* first_bad) {
  const int lane = threadIdx.x % kWarp;
  FC_ROW_LOOP(i, n) {
    const float* zi = z + i * c;
    const float* ti = t + i * c;
    const MaxSum ms = row_max_sum(zi, c, lane);
    if (rows) {
      const float loss = dense_row_loss(zi, ti, i, c, lane, ms, first_bad);
      if (lane == 0) rows[i] = loss;
    }
    if (dz) dense_row_grad(dz + i * c, zi, ti, i, c, lane, ms, scale, first_bad);
  }
}

__global__ void labels_kernel(float* rows, float* dz, const float* z, const std::int64_t* labels,
                              float scale, index_t n, index_t c, unsigned long long* first_bad) {
  const int lane = threadIdx.x % kWarp;
  FC_ROW_LOOP(i, n) {
    const float* zi = z + i * c;
    const MaxSum ms = row_max_sum(zi, c, lane);
    const std::int64_t y = labels[i];
    if (rows && lane == 0) rows[i] = labels_row_loss(zi, y, i, c, ms, first_bad);
    if (dz) labels_row_grad(dz + i * c, zi, y, i, c, lane, ms, scale, first_bad);
  }
}

// loss = sum(rows) / n: each thread sums a fixed stride of rows in double, then the fixed tree.
__global__ void mean_kernel(float* loss, const float* rows, index_t n) {
  __shared__ double buf[kReduceBlock];
  double acc = 0.0;
  for (index_t i = threadIdx.x; i < n; i += kReduceBlock) acc += static_cast<double>(rows[i]);
  const double total = block_sum(acc, buf);
  if (threadIdx.x == 0) *loss = static_cast<float>(total / static_cast<double>(n));
}

#undef FC_ROW_LOOP

unsigned row_blocks(index_t n) {
  const index_t want = (n + kRowWarps - 1) / kRowWarps;
  return static_cast<unsigned>(want < 1 ? 1 : (want < kMaxBlocks ? want : kMaxBlocks));
}

constexpr int kRowThreads = kRowWarps * kWarp;

void reduce_mean(float* loss, const float* rows, index_t n) {
  mean_kernel<<<1, kReduceBlock, 0, stream()>>>(loss, rows, n);
  FC_LAUNCH_CHECK();
}

// Any of loss and dz may be null (not both): the kernels compute what is asked for.
template <typename Target>
void run(float* loss, float* dz, const float* z, const Target* t, float dloss, index_t n,
         index_t c, unsigned long long* first_bad) {
  const float scale = dloss / float(n);  // as the CPU: in the array's precision
  std::optional<DeviceArray> rows;
  if (loss) rows.emplace(std::vector<index_t>{n}, DType::f32);
  float* r = loss ? rows->data<float>() : nullptr;
  if constexpr (std::is_same_v<Target, float>)
    dense_kernel<<<row_blocks(n), kRowThreads, 0, stream()>>>(r, dz, z, t, scale, n, c,
                                                              first_bad);
  else
    labels_kernel<<<row_blocks(n), kRowThreads, 0, stream()>>>(r, dz, z, t, scale, n, c,
                                                               first_bad);
  FC_LAUNCH_CHECK();
  if (loss) reduce_mean(loss, r, n);
}

}  // namespace

void softmax_ce_forward(float* loss, const float* z, const float* t, index_t n, index_t c,
                        unsigned long long* first_bad) {
  run(loss, nullptr, z, t, 1.0f, n, c, first_bad);
}

void softmax_ce_forward(float* loss, const float* z, const std::int64_t* labels, index_t n,
                        index_t c, unsigned long long* first_bad) {
  run(loss, nullptr, z, labels, 1.0f, n, c, first_bad);
}

void softmax_ce_backward(float* dz, const float* z, const float* t, float dloss, index_t n,
                         index_t c, unsigned long long* first_bad) {
  run(nullptr, dz, z, t, dloss, n, c, first_bad);
}

void softmax_ce_backward(float* dz, const float* z, const std::int64_t* labels, float dloss,
                         index_t n, index_t c, unsigned long long* first_bad) {
  run(nullptr, dz, z, labels, dloss, n, c, first_bad);
}

void softmax_ce_forward_backward(float* loss, float* dz, const float* z, const float* t,
                                 float dloss, index_t n, index_t c,
                                 unsigned long long* first_bad) {
  run(loss, dz, z, t, dloss, n, c, first_bad);
}

void softmax_ce_forward_backward(float* loss, float* dz, const float* z,
                                 const std::int64_t* labels, float dloss, index_t n, index_t c,
                                 unsigned long long* first_bad) {
  run(loss, dz, z, labels, dloss, n, c, first_bad);
}

}  // namespace fastconv::cuda
