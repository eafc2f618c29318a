// The dense (fully connected) layer in the tutorial's layout, and bias over channels.
//   x (N, In), w (In, Out), b (Out) -> y (N, Out) = x @ w + b
// Bias over channels: x (N, C, inner...) viewed as (N, C, inner), b (C).
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// The GEMMs' sizes against the 32-bit BLAS limit (ValueError naming x's or w's axis). The kernels
// check too; bindings call it first so nothing is allocated for a call that will be refused.
void check_dense_dims(index_t n, index_t in, index_t out);

// y = x @ w + b, then max(y, 0) with `relu` (NaN passes, as relu_forward), as one GEMM pass:
// each tile of y starts as b and the GEMM adds onto it (beta = 1), then the tile is clamped while
// it is in cache (blas.h's gemm_parallel_bias_relu). b may be null (no bias).
template <typename T>
void dense_forward(T* y, const T* x, const T* w, const T* b, index_t n, index_t in, index_t out,
                   bool relu = false);

// dx (N, In) = g @ w^T, dw (In, Out) = x^T @ g, db (Out) = sum over rows of g, where g = dy, or
// with relu_y (the output of dense_forward with relu) g = dy where relu_y > 0, else 0: written
// once into scratch and read by all three. dx and db may be null (not wanted); relu_y may be null.
template <typename T>
void dense_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy, const T* relu_y,
                    index_t n, index_t in, index_t out);

// y[n, c, k] = x[n, c, k] + b[c].
template <typename T>
void bias_add(T* y, const T* x, const T* b, index_t n, index_t c, index_t inner);

// db[c] = sum over n and k of dy[n, c, k], in a fixed order.
template <typename T>
void bias_grad(T* db, const T* dy, index_t n, index_t c, index_t inner);

}  // namespace fastconv::cpu
