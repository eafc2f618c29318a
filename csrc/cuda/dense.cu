// The dense layer and the bias on the GPU, the twin of csrc/cpu/dense.cpp: the same three GEMMs
// through cuda::gemm, the bias folded into the forward GEMM, the bias gradient by bias_grad's
// fixed-order per-channel reduction (deterministic: no atomics, no split sums).
#include "cuda/dense.h"

#include "cuda/device_array.h"
#include "cuda/context.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// Every row of y (n, out) starts as b.
__global__ void fill_rows_kernel(float* y, const float* b, index_t n, index_t out) {
  FC_GRID_LOOP(e, n * out) y[e] = b[e % out];
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

}  // namespace

void dense_forward(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out) {
  if (b) {
    fill_rows_kernel<<<blocks_for(n * out), kBlock, 0, stream()>>>(y, b, n, out);
    FC_LAUNCH_CHECK();
  }
  gemm(false, false, n, out, in, 1.0f, x, in, w, out, b ? 1.0f : 0.0f, y, out);
}

void dense_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                    const float* dy, index_t n, index_t in, index_t out) {
  if (dx) gemm(false, true, n, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
  gemm(true, false, in, out, n, 1.0f, x, in, dy, out, 0.0f, dw, out);
  // (N, Out) is (N, C, inner = 1): one block per column.
  if (db) bias_grad(db, dy, nullptr, n, out, 1);
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

}  // namespace fastconv::cuda
