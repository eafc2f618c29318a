// conv2d's forward as one implicit-GEMM kernel: y = conv(x, w) + b (then ReLU) computed tile by
// tile straight from x, with the im2col index math done as the input tile is gathered into shared
// memory, so no column matrix is materialised (the im2col + cuBLAS path of conv.cu stays the
// reference). FP32 FMA, or TF32 tensor cores (mma.sync m16n8k8, FP32 accumulation) when tf32()
// is on. Layouts and arguments as conv.h's conv2d_forward. Queued on stream(); nothing
// synchronises.
//
// Determinism: every output element is written by one thread, which sums its c*kh*kw products
// from +0 in ascending (c, ki, kj) order (one fmaf each; with TF32, one mma.sync per 8), then
// adds the bias: the same bits on every run.
#pragma once
#include "fastconv/geometry.h"

namespace fastconv::cuda {

// Whether conv2d_forward_implicit takes this shape: grids that fit the launch limits (at most
// 65535 tiles of output channels).
bool conv2d_implicit_supported(const Conv2dShape& s);

// y = conv(x, w) + b, or relu(...) with `relu`; b may be null. For supported shapes only.
void conv2d_forward_implicit(float* y, const float* x, const float* w, const float* b,
                             const Conv2dShape& s, bool relu);

// Test hook: the int64 (PlainDiv) kernels for every shape, not only past index32_fits, so that
// the tests, whose sizes all fit in int32, run them too.
void set_conv2d_implicit_index64(bool on);
bool conv2d_implicit_index64();  // the hook's setting, for the backward kernels

}  // namespace fastconv::cuda
