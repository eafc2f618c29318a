// Output sizes, the im2col element mapping and pooling windows: the one source of index math for
// both backends. The CPU tests exercise exactly what the GPU kernels run.
#pragma once
#include "fastconv/common.h"

namespace fastconv {

// 2-D convolution of x (n, c, h, w) with w (k, c, kh, kw) into y (n, k, oh, ow).
struct Conv2dShape {
  index_t n, c, h, w;     // input
  index_t k, kh, kw;      // output channels and kernel size
  index_t sh, sw;         // stride
  index_t ph, pw;         // zero padding on each side
  index_t dh, dw;         // dilation
  index_t oh, ow;         // output size, from conv_out_size
  FC_HD index_t col_rows() const { return c * kh * kw; }  // im2col rows: one per (c, ki, kj)
  FC_HD index_t out_plane() const { return oh * ow; }
};

// Pooling of x (n, c, h, w) into y (n, c, oh, ow), windows kh x kw.
struct Pool2dShape {
  index_t n, c, h, w;
  index_t kh, kw, sh, sw, ph, pw;
  index_t oh, ow;
};

// floor((in + 2p - d(k-1) - 1) / s) + 1, or 0 when no window fits (callers reject sizes < 1).
FC_HD index_t conv_out_size(index_t in, index_t k, index_t s, index_t p, index_t d) {
  const index_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

// Pooling output size. In ceil mode a partial last window is kept only if it starts inside the
// image or its left padding -- a window lying wholly in the right padding would see no input.
FC_HD index_t pool_out_size(index_t in, index_t k, index_t s, index_t p, bool ceil_mode) {
  const index_t span = in + 2 * p - k;
  if (span < 0) return 0;
  index_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// The input coordinate that output position o reads through kernel tap t (may be in the padding).
FC_HD index_t conv_in_coord(index_t o, index_t t, index_t s, index_t p, index_t d) {
  return o * s - p + t * d;
}

// The inverse, for gather-form col2im: the output position that reads input coordinate i through
// tap t, or -1 if none does (i is skipped by the stride, or o falls outside [0, out)).
FC_HD index_t conv_out_coord(index_t i, index_t t, index_t s, index_t p, index_t d, index_t out) {
  const index_t num = i + p - t * d;
  if (num < 0 || num % s != 0) return -1;
  const index_t o = num / s;
  return o < out ? o : -1;
}

// A pooling window along one axis: [begin, end) clipped to the image, and the unclipped extent
// that counts toward the average's divisor: padding counts, overhang past the padding never does.
struct Window {
  index_t begin, end, padded_extent;
};

FC_HD Window pool_window(index_t o, index_t k, index_t s, index_t p, index_t in) {
  const index_t start = o * s - p;
  const index_t stop = min_i(start + k, in + p);
  return {max_i(start, 0), min_i(start + k, in), stop - start};
}

// The outputs [first, last) along one axis whose windows contain input coordinate i: the pooling
// backward gathers over these, so every input element is written by exactly one thread.
struct OutRange {
  index_t first, last;
};

FC_HD OutRange pool_outputs_reading(index_t i, index_t k, index_t s, index_t p, index_t out) {
  const index_t lo_num = i + p - k + 1;  // smallest o with o*s - p + k > i
  const index_t first = lo_num <= 0 ? 0 : (lo_num + s - 1) / s;
  const index_t last = min_i(out, (i + p) / s + 1);
  return {first, last > first ? last : first};
}

}  // namespace fastconv
