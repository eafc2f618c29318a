// 2-D max and average pooling of NCHW planes on the GPU, float32: the twin of csrc/cpu/pool.h,
// with window geometry from fastconv/geometry.h only. Forward: one thread per output; backward:
// one thread per input element gathering over the outputs whose windows contain it (no atomics).
#pragma once
#include "fastconv/geometry.h"

namespace fastconv::cuda {

// y, argmax (n, c, oh, ow) from x (n, c, h, w). Padding never wins; ties keep the first maximum
// in raster order; a window holding NaN yields NaN and the index of its first NaN. argmax holds
// h * W + w within the (n, c) plane.
void max_pool2d_forward(float* y, index_t* argmax, const float* x, const Pool2dShape& s);

// dx (n, c, h, w): each input gathers dy over the outputs reading it whose argmax is it.
void max_pool2d_backward(float* dx, const float* dy, const index_t* argmax, const Pool2dShape& s);

// y: the clipped window's sum over the padded extent (count_include_pad) or the clipped count.
void average_pool2d_forward(float* y, const float* x, const Pool2dShape& s,
                            bool count_include_pad);

// dx: gathers dy / divisor (the forward's divisor) over the outputs reading it.
void average_pool2d_backward(float* dx, const float* dy, const Pool2dShape& s,
                             bool count_include_pad);

}  // namespace fastconv::cuda
