// conv2d's backward as implicit-GEMM kernels, the twins of conv_implicit.h's forward: the data
// gradient (dgrad) and the weight gradient (wgrad) computed tile by tile straight from dy, w and
// x in NCHW, with no column matrix, no GEMM-layout copy of dy and no col2im. conv.cu's
// conv2d_backward takes each where it is chosen (ConvKernel, conv_choice.h) and supported, and
// im2col + cuBLAS for the rest; arguments and layouts as conv.h's conv2d_backward. Queued on
// stream(); nothing synchronises. FP32 FMA, or TF32 tensor cores when tf32() is on.
//
// relu_y: null, or the forward's ReLU output, whose mask (relu_y > 0) applies to dy as it is read.
// Determinism: each output element is summed in an order fixed by the shape (and, for the
// wgrad's split of the reduction, the device's SM count), so a rerun gives the same bits.
#pragma once
#include "fastconv/geometry.h"

namespace fastconv::cuda {

// dx = conv2d's data gradient of sum(y * dy): the transposed convolution of (masked) dy by w.
bool conv2d_dgrad_implicit_supported(const Conv2dShape& s);
void conv2d_dgrad_implicit(float* dx, const float* dy, const float* w, const float* relu_y,
                           const Conv2dShape& s);

// dw (and db where not null) = the weight (and bias) gradients of sum(y * dy).
bool conv2d_wgrad_implicit_supported(const Conv2dShape& s);
void conv2d_wgrad_implicit(float* dw, float* db, const float* x, const float* dy,
                           const float* relu_y, const Conv2dShape& s);

}  // namespace fastconv::cuda
