// Output sizes, the im2col element mapping and pooling windows: the one source of index math for
// both backends. The CPU tests exercise exactly what the GPU kernels run. Functions that divide
// by a stride come in a *_by form taking the division as a policy (fastdiv.h): the CPU passes
// PlainDiv, the GPU FastDivU32 where the sizes fit in 31 bits.
#pragma once
#include "fastconv/checked.h"
#include "fastconv/common.h"
#include "fastconv/fastdiv.h"

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

// Sizes computed from user input that do not fit in int64. conv2d_shape and pool2d_shape reject
// them with a message naming the argument; the size functions below return kSizeOverflow instead
// of a wrapped value, so no caller can mistake an overflow for a size.
constexpr index_t kSizeOverflow = -1;

// ceil(a / b) for a >= 0 and b >= 1, without the a + b - 1 that overflows for b near 2**63.
FC_HD index_t ceil_div(index_t a, index_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }

// in + 2p, the extent of the padded input, or false when it does not fit in int64.
FC_HD bool padded_size(index_t in, index_t p, index_t* out) {
  index_t two_p;
  return try_mul(p, index_t{2}, &two_p) && try_add(in, two_p, out);
}

// d(k-1) + 1, the extent one dilated kernel covers, or false when it does not fit in int64.
FC_HD bool kernel_reach(index_t k, index_t d, index_t* out) {
  index_t gaps;
  return try_mul(d, k - 1, &gaps) && try_add(gaps, index_t{1}, out);
}

// floor((in + 2p - d(k-1) - 1) / s) + 1, 0 when no window fits (callers reject sizes < 1), or
// kSizeOverflow when in + 2p or d(k-1) + 1 does not fit. For in >= 0, p >= 0 and k, s, d >= 1.
FC_HD index_t conv_out_size(index_t in, index_t k, index_t s, index_t p, index_t d) {
  index_t padded, reach;
  if (!padded_size(in, p, &padded) || !kernel_reach(k, d, &reach)) return kSizeOverflow;
  const index_t span = padded - reach;  // both non-negative: cannot overflow
  return span < 0 ? 0 : span / s + 1;
}

// Pooling output size, or kSizeOverflow when in + 2p does not fit. In ceil mode a partial last
// window is kept only if it starts inside the image or its left padding -- a window lying wholly
// in the right padding would see no input. For in >= 0, p >= 0 and k, s >= 1.
FC_HD index_t pool_out_size(index_t in, index_t k, index_t s, index_t p, bool ceil_mode) {
  index_t padded;
  if (!padded_size(in, p, &padded)) return kSizeOverflow;
  const index_t span = padded - k;
  if (span < 0) return 0;
  const index_t steps = ceil_mode ? ceil_div(span, s) : span / s;
  index_t last_start;  // steps * s; a product past int64 lies past in + p too
  if (ceil_mode && (!try_mul(steps, s, &last_start) || last_start >= in + p)) return steps;
  return steps + 1;
}

// The input coordinate that output position o reads through kernel tap t (may be in the padding).
// In any index type I (int32 in the GPU's 32-bit path).
template <class I>
FC_HD I conv_in_coord(I o, I t, I s, I p, I d) {
  return o * s - p + t * d;
}

FC_HD index_t conv_in_coord(index_t o, index_t t, index_t s, index_t p, index_t d) {
  return conv_in_coord<index_t>(o, t, s, p, d);
}

// The inverse, for gather-form col2im: the output position that reads input coordinate i through
// tap t, or -1 if none does (i is skipped by the stride, or o falls outside [0, out)).
// `s` divides by the stride, in its index type I = Div::Int (i + p and t * d must fit in it).
template <class Div>
FC_HD typename Div::Int conv_out_coord_by(typename Div::Int i, typename Div::Int t, const Div& s,
                                          typename Div::Int p, typename Div::Int d,
                                          typename Div::Int out) {
  using I = typename Div::Int;
  const I num = i + p - t * d;
  if (num < 0) return -1;
  I o, rem;
  s.divmod(num, &o, &rem);
  return rem == 0 && o < out ? o : -1;
}

FC_HD index_t conv_out_coord(index_t i, index_t t, index_t s, index_t p, index_t d, index_t out) {
  return conv_out_coord_by(i, t, PlainDiv(s), p, d, out);
}

// A pooling window along one axis: [begin, end) clipped to the image, and the unclipped extent
// that counts toward the average's divisor: padding counts, overhang past the padding never does.
struct Window {
  index_t begin, end, padded_extent;
};

// For o below pool_out_size. The ends are taken relative to the start: start + k itself may
// overflow when the filter is near 2**63, while in - start and in + p - start never do.
FC_HD Window pool_window(index_t o, index_t k, index_t s, index_t p, index_t in) {
  const index_t start = o * s - p;
  return {max_i(start, 0), start + min_i(k, in - start), min_i(k, in + p - start)};
}

// The average's divisor, the product of the two axes' divisor extents. In double, so that two
// extents up to 2**63 cannot overflow it (an int64 product of two 2**32 windows wrapped to 0, and
// the mean to inf); exact below 2**53, so it equals the integer product wherever that fits.
// Both backends divide by T(pool_divisor(...)), which keeps them bitwise alike.
FC_HD double pool_divisor(index_t extent_h, index_t extent_w) {
  return static_cast<double>(extent_h) * static_cast<double>(extent_w);
}

// The outputs [first, last) along one axis whose windows contain input coordinate i: the pooling
// backward gathers over these, so every input element is written by exactly one thread.
struct OutRange {
  index_t first, last;
};

// `s` divides by the stride, in its index type I = Div::Int (i + p and k must fit in it).
template <class Div>
FC_HD OutRange pool_outputs_reading_by(typename Div::Int i, typename Div::Int k, const Div& s,
                                       typename Div::Int p, typename Div::Int out) {
  using I = typename Div::Int;
  const I lo_num = i + p - k + 1;  // smallest o with o*s - p + k > i
  const I first = lo_num <= 0 ? 0 : s.div(lo_num - 1) + 1;  // ceil(lo_num / s)
  const I below = s.div(i + p) + 1;
  const I last = below < out ? below : out;
  return {first, last > first ? last : first};
}

FC_HD OutRange pool_outputs_reading(index_t i, index_t k, index_t s, index_t p, index_t out) {
  return pool_outputs_reading_by(i, k, PlainDiv(s), p, out);
}

}  // namespace fastconv
