// The dense (fully connected) layer and the bias on the GPU, float32: the twin of
// csrc/cpu/dense.h.
//   x (N, In), w (In, Out), b (Out) -> y (N, Out) = x @ w + b
#pragma once
#include "fastconv/common.h"

namespace fastconv::cuda {

// y = x @ w + b as one GEMM: y starts as b in every row and the GEMM adds with beta = 1.
// b may be null (no bias).
void dense_forward(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out);

// dx (N, In) = dy @ w^T, dw (In, Out) = x^T @ dy, db (Out) = sum over rows of dy (bias_grad).
// dx and db may be null (not wanted).
void dense_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                    const float* dy, index_t n, index_t in, index_t out);

// y[n, c, k] = x[n, c, k] + b[c].
void bias_add(float* y, const float* x, const float* b, index_t n, index_t c, index_t inner);
// db[c] = sum over n and k of dy[n, c, k] (only where mask > 0 when mask is given), summed in
// double in channel_sum.h's two fixed-order stages: deterministic. (In channel_sum.cu.)
void bias_grad(float* db, const float* dy, const float* mask, index_t n, index_t c,
               index_t inner);

}  // namespace fastconv::cuda
