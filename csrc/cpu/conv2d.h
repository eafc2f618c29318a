// 2-D convolution (cross-correlation), NCHW, by im2col + GEMM over chunks of the batch.
//   x (n, c, h, w), w (k, c, kh, kw), b (k) or null, y (n, k, oh, ow); geometry in Conv2dShape.
// Samples go through the GEMMs in groups of ceil(512 / (oh*ow)) (1 for planes of 512 or more),
// fixed by the shape, so results are bitwise independent of the chunking (and, in float32, of
// the thread count). Scratch (cpu::scratch) is bounded by the chunk, not the batch: the chunk's
// columns, c*kh*kw * nb * oh*ow elements, plus k * group * oh*ow where a group has > 1 sample.
#pragma once
#include <cstddef>

#include "fastconv/geometry.h"

namespace fastconv::cpu {

// y = conv(x, w) + b. b may be null (no bias).
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s);

// Gradients of sum(y * dy). dx and db may be null (not wanted); dw is always written.
//   dx (n, c, h, w), dw (k, c, kh, kw), db (k); dy (n, k, oh, ow).
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy,
                     const Conv2dShape& s);

// The byte budget for one chunk's scratch (default 16 MiB). A chunk holds whole groups, at least
// one, so a limit below one group's need (even 0) means one group (often one sample) per chunk.
void set_conv_workspace_limit(std::size_t bytes);
std::size_t conv_workspace_limit();

// Samples per chunk under the current limit, and the scratch bytes a call will use.
index_t conv2d_chunk(const Conv2dShape& s, std::size_t elem_bytes);
std::size_t conv2d_scratch_bytes(const Conv2dShape& s, std::size_t elem_bytes);

}  // namespace fastconv::cpu
