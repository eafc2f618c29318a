// The memory-bound passes around conv2d's GEMMs on the GPU (conv.cu runs them; the private
// _cuda._im2col etc. bindings expose them to the tests and benchmarks/op_rows.py). Layouts as in
// csrc/cpu/conv.cpp: a group of nb samples has im2col columns col (c*kh*kw rows, nb*oh*ow
// columns; sample j's columns start at j*oh*ow) and a GEMM-layout output m (k rows, nb*oh*ow).
// Each queues one kernel on stream(); every output element has one writer thread, so results
// are bitwise reproducible.
#pragma once
#include "fastconv/geometry.h"

namespace fastconv::cuda {

// col from the nb samples at x (zeros where a tap reads padding).
void im2col(float* col, const float* x, const Conv2dShape& s, index_t nb);

// Gather col2im: each element of the nb samples at dx sums the column entries that read it,
// taps in ascending (ki, kj) order from +0, rounding each add -- the CPU's order.
void col2im(float* dx, const float* col, const Conv2dShape& s, index_t nb);

// GEMM layout m (k, nb*plane) -> NCHW y (nb, k, plane), plus bias[kk] (one rounded add) when
// bias is not null, then clamped at 0 with `relu` (NaN passes). With nb == 1 the layouts coincide
// and m may be y.
void gemm_to_nchw(float* y, const float* m, const float* bias, index_t nb, index_t k,
                  index_t plane, bool relu);

// NCHW dy (nb, k, plane) -> GEMM layout m (k, nb*plane), through the ReLU's gradient mask (dy
// where relu_y > 0, else +0) when relu_y is not null.
void nchw_to_gemm(float* m, const float* dy, const float* relu_y, index_t nb, index_t k,
                  index_t plane);

// nchw_to_gemm that also sums what it writes, per channel, in chunks of kSumChunk along the
// group's row of m (channel_sum.h's first stage, folded into the pass that reads dy anyway): the
// sum of chunk i of channel kk goes to partial[kk * stride + base + i], i < sum_chunks(nb*plane).
void nchw_to_gemm_sum(float* m, double* partial, index_t stride, index_t base, const float* dy,
                      const float* relu_y, index_t nb, index_t k, index_t plane);

}  // namespace fastconv::cuda
