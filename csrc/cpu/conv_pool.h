// Convolution + bias + ReLU + 2x2 stride-2 max pooling (no padding, floor) as one op on the CPU.
//   x (n, c, h, w), w (k, c, kh, kw), b (k) or null; the convolution's output z (n, k, oh, ow)
//   lives in this thread's scratch only: y, argmax (n, k, oh / 2, ow / 2) are the pooled values
//   and indices, bitwise max_pool2d_forward(conv2d_forward(..., relu)).
// What it saves: z is never a caller's array (12.8 MB at the tutorial's batch 64 that the
// unfused chain keeps alive from the forward to the backward), and the backward passes dz to
// conv2d_backward already masked, so the convolution's backward does not read z for the ReLU.
// The forward does not cut the batch into cache-sized chunks: measured on the tutorial's conv2
// (64x32x28x28 -> 64, 2 threads), chunks of 32 samples (whole Winograd blocks, so the same bits)
// were 8% slower than one call (each Winograd call transforms the filters again, ~0.3 ms), and
// chunks of 20 under im2col within 0.6% of one call: pooling from cache saved less than that.
#pragma once
#include <cstdint>

#include "fastconv/geometry.h"

namespace fastconv::cpu {

// The pooling a fused call does over the convolution's output of shape s.
Pool2dShape conv_pool_shape(const Conv2dShape& s);

// argmax as max_pool2d_forward gives it: h * ow + w within the (n, k) plane of z (I = index_t),
// or the window code 0-3 (I = std::uint8_t; cpu/pool.h).
template <typename T, typename I>
void conv2d_relu_max_pool2d_forward(T* y, I* argmax, const T* x, const T* w, const T* b,
                                    const Conv2dShape& s);

// Gradients of sum(y * dy) through the pool, the ReLU and the convolution: dy reaches z at
// argmax where y > 0 (the ReLU's mask there, as relu_y > 0 is at the argmax), +0 elsewhere;
// then conv2d_backward. dx and db may be null. Bitwise the unfused chain's gradients.
template <typename T, typename I>
void conv2d_relu_max_pool2d_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy,
                                     const T* y, const I* argmax, const Conv2dShape& s);

}  // namespace fastconv::cpu
