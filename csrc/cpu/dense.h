// The dense (fully connected) layer in the tutorial's layout, and bias over channels.
//   x (N, In), w (In, Out), b (Out) -> y (N, Out) = x @ w + b
// Bias over channels: x (N, C, inner...) viewed as (N, C, inner), b (C).
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// The GEMMs' sizes against the 32-bit BLAS limit (ValueError naming x's or w's axis). The kernels
// check too; bindings call it first so nothing is allocated for a call that will be refused.
void check_dense_dims(index_t n, index_t in, index_t out);

// y = x @ w + b as one GEMM: y starts as b in every row and the GEMM adds with beta = 1.
// b may be null (no bias).
template <typename T>
void dense_forward(T* y, const T* x, const T* w, const T* b, index_t n, index_t in, index_t out);

// dx (N, In) = dy @ w^T, dw (In, Out) = x^T @ dy, db (Out) = sum over rows of dy.
// dx and db may be null (not wanted).
template <typename T>
void dense_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy, index_t n,
                    index_t in, index_t out);

// y[n, c, k] = x[n, c, k] + b[c].
template <typename T>
void bias_add(T* y, const T* x, const T* b, index_t n, index_t c, index_t inner);

// db[c] = sum over n and k of dy[n, c, k], in a fixed order.
template <typename T>
void bias_grad(T* db, const T* dy, index_t n, index_t c, index_t inner);

}  // namespace fastconv::cpu
