// Elementwise activations on flat arrays of any shape.
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// y = max(x, 0); NaN passes through.
template <typename T>
void relu_forward(T* y, const T* x, index_t count);

// dx = dy where the forward output y > 0, else 0 (y, not x, so the input need not be kept).
template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, index_t count);

}  // namespace fastconv::cpu
