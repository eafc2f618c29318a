// The dense layer on the GPU, the twin of csrc/cpu/dense.cpp: the same three GEMMs through
// cuda::gemm, the bias folded into the forward GEMM, the bias gradient by bias_grad's fixed-order
// per-column reduction (deterministic: no atomics, no split sums).
#include "cuda/dense.h"

#include "cuda/device_array.h"
#include "cuda/elementwise.h"
#include "cuda/context.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// Every row of y (n, out) starts as b.
__global__ void fill_rows_kernel(float* y, const float* b, index_t n, index_t out) {
  FC_GRID_LOOP(e, n * out) y[e] = b[e % out];
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

}  // namespace fastconv::cuda
