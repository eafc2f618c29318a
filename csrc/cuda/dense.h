// The dense (fully connected) layer and the bias on the GPU, float32: the twin of
// csrc/cpu/dense.h.
//   x (N, In), w (In, Out), b (Out) -> y (N, Out) = x @ w + b
#pragma once
#include "fastconv/common.h"

namespace fastconv::cuda {

// y = x @ w + b, then max(y, 0) with `relu` (NaN passes, as relu_forward): y starts as b in
// every row and the GEMM adds with beta = 1. b may be null (no bias).
void dense_forward(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out, bool relu = false);

// dx (N, In) = g @ w^T, dw (In, Out) = x^T @ g, db (Out) = sum over rows of g (bias_grad), where
// g = dy, or with relu_y (the output of dense_forward with relu) g = dy where relu_y > 0, else 0.
// dx and db may be null (not wanted); relu_y may be null.
void dense_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                    const float* dy, const float* relu_y, index_t n, index_t in, index_t out);

// y[n, c, k] = x[n, c, k] + b[c].
void bias_add(float* y, const float* x, const float* b, index_t n, index_t c, index_t inner);
// db[c] = sum over n and k of dy[n, c, k] (only where mask > 0 when mask is given), summed in
// double in channel_sum.h's two fixed-order stages: deterministic. (In channel_sum.cu.)
void bias_grad(float* db, const float* dy, const float* mask, index_t n, index_t c,
               index_t inner);

}  // namespace fastconv::cuda
