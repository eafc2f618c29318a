// 2-D max and average pooling of NCHW planes, forward and backward.
// Window geometry (output sizes, clipping, divisors, the outputs reading an input) comes from
// fastconv/geometry.h only, so the CUDA kernels and these agree by construction.
#pragma once
#include "fastconv/geometry.h"

namespace fastconv::cpu {

// y, argmax (n, c, oh, ow) from x (n, c, h, w). Padding never wins (as if -inf); ties keep the
// first maximum in raster order; a window holding NaN yields NaN and the index of its first NaN.
// argmax holds h * W + w within the (n, c) plane.
template <typename T>
void max_pool2d_forward(T* y, index_t* argmax, const T* x, const Pool2dShape& s);

// dx (n, c, h, w): each input element gathers dy over the outputs whose window contains it and
// whose argmax is it -- one writer per element, a fixed summation order, no atomics.
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const index_t* argmax, const Pool2dShape& s);

// y (n, c, oh, ow): window sum over the clipped window divided by the padded extent
// (count_include_pad) or by the clipped element count. Ceil-mode overhang never counts.
template <typename T>
void average_pool2d_forward(T* y, const T* x, const Pool2dShape& s, bool count_include_pad);

// dx (n, c, h, w): gathers dy / divisor (the forward's divisor) over the outputs reading it.
template <typename T>
void average_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s, bool count_include_pad);

}  // namespace fastconv::cpu
