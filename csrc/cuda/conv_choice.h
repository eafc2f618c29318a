// Where ConvKernel::automatic takes the implicit-GEMM conv kernels over im2col + cuBLAS: the
// shapes where they have been measured faster.
#pragma once
#include "fastconv/geometry.h"

namespace fastconv::cuda {

// The forward (conv_implicit.h) for this shape.
bool implicit_measured_faster(const Conv2dShape& s);
// The backward (conv_implicit_backward.h) for this shape.
bool implicit_backward_measured_faster(const Conv2dShape& s);

}  // namespace fastconv::cuda
