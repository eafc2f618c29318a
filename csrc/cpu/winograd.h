// Winograd convolution for 3x3 filters, stride 1, dilation 1, any padding, float32, NCHW.
//
// F(m x m, 3x3) computes an m x m output tile from an (m+2) x (m+2) input patch with (m+2)^2
// multiplications per channel pair instead of 9 m^2: 2.25x fewer for F(2,3), 4x for F(4,3).
// The (m+2)^2 element-wise products, summed over channels, are (m+2)^2 GEMMs per block of tiles:
//   M[xi] (k x tiles) = U[xi] (k x c) * V[xi] (c x tiles).
// Tiles are numbered over the whole batch (sample, tile row, tile column) and cut into blocks of
// whole tile rows, as many as keep a block's transformed input and products within a size fixed
// by the shape alone (winograd_rows.h, kBlockBytes); a block runs on one thread with
// single-threaded GEMMs, so results are bitwise independent of the thread count. The weight
// gradient sums fixed slices of blocks, then the slices in order. The transforms are in
// winograd_rows.h (compiled per ISA level, cpu/simd_clones.h: the last bits are the same for any
// thread count on one machine, not across CPUs, as the BLAS's) and winograd_transforms.h.
//
// dx is itself a Winograd correlation: dy, padded by 2 - p (cropped where p > 2), with the
// filter turned by 180 degrees and its channel axes swapped.
#pragma once
#include <cstddef>

#include "fastconv/geometry.h"

namespace fastconv::cpu {

// Whether s is a shape Winograd computes: 3x3, stride 1, dilation 1 (any padding), rows of at
// most 2**30 pixels.
bool winograd_applies(const Conv2dShape& s);

// m = 2 or 4 (the output tile). y = conv(x, w) + b (b may be null), then ReLU with `relu`.
void winograd_forward(int m, float* y, const float* x, const float* w, const float* b,
                      const Conv2dShape& s, bool relu);

// dx and db (either may be null) and dw of sum(y * dy); relu_y as in conv2d_backward (the mask
// of a fused ReLU). db is summed in double from the masked dy rows the dW pass splits anyway (a
// separate pass over dy and relu_y took a tenth of the backward), in fixed slices and lanes.
void winograd_backward(int m, float* dx, float* dw, float* db, const float* x, const float* w,
                       const float* dy, const float* relu_y, const Conv2dShape& s);

// The scratch bytes a forward or backward call uses, all threads together (the larger).
std::size_t winograd_scratch_bytes(int m, const Conv2dShape& s);

}  // namespace fastconv::cpu
