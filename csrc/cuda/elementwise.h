// Elementwise and small reduction kernels on the GPU, float32, mirroring csrc/cpu/activation.h,
// optim.h and dense.h's bias helpers; plus the training loop's device-side helpers (gathering a
// batch, argmax, accuracy). All launch on stream() and return without synchronising, except the
// two that report bad indices (they read a flag back).
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// y = max(x, 0); NaN passes through.
void relu_forward(float* y, const float* x, index_t count);
// dx = dy where y > 0, else 0.
void relu_backward(float* dx, const float* dy, const float* y, index_t count);

// Inverted dropout with the CPU's counter-based mask (fastconv/rng.h): the same seed keeps the
// same elements on both backends. ratio in [0, 1).
void dropout_forward(float* y, const float* x, index_t count, double ratio, std::uint64_t seed);
void dropout_backward(float* dx, const float* dy, index_t count, double ratio,
                      std::uint64_t seed);
void dropout_mask(float* mask, index_t count, double ratio, std::uint64_t seed);

// y[n, c, k] = x[n, c, k] + b[c].
void bias_add(float* y, const float* x, const float* b, index_t n, index_t c, index_t inner);
// db[c] = sum over n and k of dy[n, c, k] (only where mask > 0 when mask is given), summed in
// double, one block per channel in a fixed order: deterministic.
void bias_grad(float* db, const float* dy, const float* mask, index_t n, index_t c,
               index_t inner);

// The CPU's update formulas (csrc/cpu/optim.h), operation for operation, with every multiply
// and add rounded separately (no fused multiply-add), so the GPU update equals the CPU's bits.
void sgd_update(float* param, float* velocity, const float* grad, index_t count, double lr,
                double momentum, bool nesterov, double weight_decay);
void adam_update(float* param, float* m, float* v, const float* grad, index_t count, double lr,
                 double beta1, double beta2, double eps, double weight_decay, index_t step);

// out (n, row) = data[indices[i]] rows, data (rows_in, row) of 4- or 8-byte elements.
// Returns the position of the first index outside [0, rows_in), or -1 (this reads a flag back).
index_t gather_rows(void* out, const void* data, const std::int64_t* indices, index_t n,
                    index_t rows_in, index_t row, int elem_bytes);

// argmax (n) of each row of x (n, c): the first maximum; a NaN wins and stays (as max pooling).
void argmax_rows(std::int64_t* out, const float* x, index_t n, index_t c);
// count (a scalar) = rows whose argmax equals the label; labels (n) int64 or, when t is given,
// the argmax of the target row t (n, c).
void accuracy_count(std::int64_t* count, const float* z, const std::int64_t* labels,
                    const float* t, index_t n, index_t c);

// Poison fills for tests (NaN for floats, the lowest integer for int64).
void fill(float* dst, index_t count, float value);
void fill(std::int64_t* dst, index_t count, std::int64_t value);

}  // namespace fastconv::cuda
