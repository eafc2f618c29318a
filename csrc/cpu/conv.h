// 2-D convolution (cross-correlation), NCHW, by im2col + GEMM over groups of samples.
//   x (n, c, h, w), w (k, c, kh, kw), b (k) or null, y (n, k, oh, ow); geometry in Conv2dShape.
// Samples go through the GEMMs in groups of ceil(512 / (oh*ow)) (1 for planes of 512 or more),
// fixed by the shape; groups run in parallel, one thread and one single-threaded GEMM each, so
// results are bitwise independent of the thread count. Scratch is per thread and bounded by one
// group, not the batch: c*kh*kw * nb * oh*ow elements of columns, plus k * nb * oh*ow where a group
// has > 1 sample, plus up to 8 partial weight gradients in the backward.
// float32 3x3 stride-1 convolutions may run as Winograd instead (cpu/winograd.h), as the
// process-wide setting in cpu/winograd_choice.h decides; the functions here dispatch.
#pragma once
#include <cstddef>

#include "fastconv/geometry.h"

namespace fastconv::cpu {

// y = conv(x, w) + b, or relu(conv(x, w) + b) with `relu`. b may be null (no bias).
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s,
                    bool relu = false);

// Gradients of sum(y * dy). dx and db may be null (not wanted); dw is always written.
//   dx (n, c, h, w), dw (k, c, kh, kw), db (k); dy (n, k, oh, ow).
// relu_y: null, or the output of conv2d_forward with relu, whose mask then applies to dy.
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy, const T* relu_y,
                     const Conv2dShape& s);

// The scratch bytes a call uses (all threads together), for the algorithm that will run.
std::size_t conv2d_scratch_bytes(const Conv2dShape& s, std::size_t elem_bytes);

}  // namespace fastconv::cpu
