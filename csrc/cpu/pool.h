// 2-D max and average pooling of NCHW planes, forward and backward.
// Window geometry (output sizes, clipping, divisors, the outputs reading an input) comes from
// fastconv/geometry.h only, so the CUDA kernels and these agree by construction.
#pragma once
#include <cstdint>

#include "fastconv/geometry.h"

namespace fastconv::cpu {

// y, argmax (n, c, oh, ow) from x (n, c, h, w). Padding never wins (as if -inf); ties keep the
// first maximum in raster order; a window holding NaN yields NaN and the index of its first NaN.
// The index type I says the form (cpu/pool_max.cpp instantiates both):
//   index_t: the flat index h * W + w within the (n, c) plane;
//   std::uint8_t: the window code di * kw + dj, the winner's row and column counted from the
//   window's top-left corner in padded coordinates (input row oi * sh - ph + di, column
//   oj * sw - pw + dj); only for kh * kw <= 256 (the caller checks). Same y either way.
template <typename T, typename I>
void max_pool2d_forward(T* y, I* argmax, const T* x, const Pool2dShape& s);

// dx (n, c, h, w): each input element sums dy over the outputs whose window contains it and
// whose argmax is it, in the outputs' raster order -- a fixed summation order, no atomics. An
// index naming no input of its output's window (a flat index outside it; a code past the taps
// or on the padding) contributes nothing. Both index forms give the same bits.
template <typename T, typename I>
void max_pool2d_backward(T* dx, const T* dy, const I* argmax, const Pool2dShape& s);

// y (n, c, oh, ow): window sum over the clipped window divided by the padded extent
// (count_include_pad) or by the clipped element count. Ceil-mode overhang never counts.
template <typename T>
void average_pool2d_forward(T* y, const T* x, const Pool2dShape& s, bool count_include_pad);

// dx (n, c, h, w): gathers dy / divisor (the forward's divisor) over the outputs reading it.
template <typename T>
void average_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s, bool count_include_pad);

}  // namespace fastconv::cpu
