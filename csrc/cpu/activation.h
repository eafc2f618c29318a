// Elementwise activations on flat arrays of any shape: relu and dropout.
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// y = max(x, 0); NaN passes through.
template <typename T>
void relu_forward(T* y, const T* x, index_t count);

// dx = dy where the forward output y > 0, else 0 (y, not x, so the input need not be kept).
template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, index_t count);

// Inverted dropout with a counter-based mask (fastconv/rng.h): element i is kept iff
// uniform(seed, i) >= ratio, and kept elements are scaled by 1/(1-ratio); dropped ones are
// exactly 0 (a select, not a multiply, so a dropped NaN or inf does not leak). ratio in [0, 1).
template <typename T>
void dropout_forward(T* y, const T* x, index_t count, double ratio, std::uint64_t seed);

// dx = dy * mask / (1-ratio) with the mask recomputed from the seed: nothing is stored by forward.
template <typename T>
void dropout_backward(T* dx, const T* dy, index_t count, double ratio, std::uint64_t seed);

// The scaled mask itself: 1/(1-ratio) where kept, 0 where dropped.
template <typename T>
void dropout_mask(T* mask, index_t count, double ratio, std::uint64_t seed);

}  // namespace fastconv::cpu
