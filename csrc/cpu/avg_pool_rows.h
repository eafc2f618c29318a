// Average pooling's general windows (any size, stride and padding), one plane per cloned call
// (cpu/simd_clones.h). Separable, as before: window sums along each input row, then down the
// window's rows, then the division; the backward gathers each input's readers the same way.
//
// The sums keep the order of the scalar loops they replace, so the bits are the same: each
// window-row sum starts at +0 and adds its columns left to right; each column sum starts from the
// window's first row sum and adds the rest top to bottom; each gradient sum starts at +0 and adds
// its readers in ascending order. What changes is the loop nest: windows that lie wholly inside
// the row (and inputs read by a full, unclipped set of windows) run as fixed-length passes that
// vectorise over outputs (or over inputs of one stride phase), so no element runs a short loop of
// its own; the edges keep the per-element loops over the index tables. Only which operand's NaN
// a sum of two NaNs passes on may differ (the compiler may swap an addition's operands).
// Internal to cpu/pool.cpp.
#pragma once
#include "cpu/simd_clones.h"
#include "fastconv/common.h"

namespace fastconv::cpu::avgrows {

// One axis: the window of each output o, [begin, end), and the outputs [first, last) reading each
// input i (cpu/pool.cpp's tables); outputs [lo, hi) have whole windows (begin = o*s - p, k wide),
// inputs [in_lo, in_hi) are read by every window that could hold them (see regular_input).
struct Axis {
  index_t in, out, k, s, p;
  const index_t *begin, *end, *first, *last;
  index_t lo, hi, in_lo, in_hi;
};

// How many windows read an input of stride phase q = (i + p) mod s away from the edges.
inline index_t readers(index_t q, index_t k, index_t s) { return q < k ? (k - 1 - q) / s + 1 : 0; }

// Input i is read by outputs (i + p) / s - n + 1 ... (i + p) / s, n = readers(its phase): none
// clipped away by the image's edges.
inline bool regular_input(const Axis& a, index_t i) {
  const index_t m = (i + a.p) / a.s, n = readers((i + a.p) % a.s, a.k, a.s);
  return a.last[i] - a.first[i] == n && (n == 0 || a.last[i] == m + 1);
}

inline bool whole_window(const Axis& a, index_t o) {
  return a.begin[o] == o * a.s - a.p && a.end[o] - a.begin[o] == a.k;
}

// The widest run of whole windows that ends at the last one, and of regular inputs likewise:
// anything outside them takes the per-element loops, which are right for every element.
inline void find_interior(Axis& a) {
  a.hi = a.out;
  while (a.hi > 0 && !whole_window(a, a.hi - 1)) --a.hi;
  a.lo = a.hi;
  while (a.lo > 0 && whole_window(a, a.lo - 1)) --a.lo;
  a.in_hi = a.in;
  while (a.in_hi > 0 && !regular_input(a, a.in_hi - 1)) --a.in_hi;
  a.in_lo = a.in_hi;
  while (a.in_lo > 0 && regular_input(a, a.in_lo - 1)) --a.in_lo;
}

// The per-element loops, for the edges: outputs [from, to) of one row's window sums, and inputs
// [from, to) of one row's reader sums.
template <typename T>
inline void window_sums(T* hrow, const T* row, const Axis& cols, index_t from, index_t to) {
  for (index_t oj = from; oj < to; ++oj) {
    T acc = T(0);
    for (index_t c = cols.begin[oj]; c < cols.end[oj]; ++c) acc += row[c];
    hrow[oj] = acc;
  }
}

template <typename T>
inline void reader_sums(T* row, const T* v, const Axis& cols, index_t from, index_t to) {
  for (index_t iw = from; iw < to; ++iw) {
    T acc = T(0);
    for (index_t oj = cols.first[iw]; oj < cols.last[iw]; ++oj) acc += v[oj];
    row[iw] = acc;
  }
}

// y (oh, ow) = window sums of x (H, W) / div (oh, ow); hs (H, ow) is scratch.
template <typename T>
FC_SIMD_CLONES void forward_plane(T* y, const T* x, T* hs, const T* div, const Axis& rows,
                                  const Axis& cols) {
  const index_t W = cols.in, ow = cols.out, lo = cols.lo, n = cols.hi - cols.lo;
  const index_t k = cols.k, s = cols.s;
  for (index_t r = 0; r < rows.in; ++r) {
    const T* row = x + r * W;
    T* hrow = hs + r * ow;
    window_sums(hrow, row, cols, 0, lo);
    window_sums(hrow, row, cols, cols.hi, ow);
    T* h = hrow + lo;
    for (index_t j = 0; j < n; ++j) h[j] = T(0);
    for (index_t t = 0; t < k && n > 0; ++t) {
      const T* b = row + lo * s - cols.p + t;
      if (s == 1) {
        for (index_t j = 0; j < n; ++j) h[j] += b[j];
      } else if (s == 2) {
        for (index_t j = 0; j < n; ++j) h[j] += b[2 * j];
      } else {
        for (index_t j = 0; j < n; ++j) h[j] += b[j * s];
      }
    }
  }
  for (index_t oi = 0; oi < rows.out; ++oi) {
    T* yrow = y + oi * ow;
    const T* h0 = hs + rows.begin[oi] * ow;
    for (index_t oj = 0; oj < ow; ++oj) yrow[oj] = h0[oj];
    for (index_t r = rows.begin[oi] + 1; r < rows.end[oi]; ++r) {
      const T* hr = hs + r * ow;
      for (index_t oj = 0; oj < ow; ++oj) yrow[oj] += hr[oj];
    }
    const T* d = div + oi * ow;
    for (index_t oj = 0; oj < ow; ++oj) yrow[oj] /= d[oj];
  }
}

// dx (H, W) from dy (oh, ow): g = dy / div, v = the sum of g over the output rows reading an input
// row, then each input the sum of v over its output columns. g (oh * ow), v (ow) and acc (2 W)
// are scratch.
template <typename T>
FC_SIMD_CLONES void backward_plane(T* dx, const T* dy, T* g, T* v, T* acc, const T* div,
                                   const Axis& rows, const Axis& cols) {
  const index_t W = cols.in, ow = cols.out, s = cols.s, a = cols.in_lo, b = cols.in_hi;
  for (index_t i = 0; i < rows.out * ow; ++i) g[i] = dy[i] / div[i];
  // Phase q's inputs a + q, a + q + s, ... sum into acc[q * span + j].
  const index_t span = b > a ? (b - a - 1) / s + 1 : 0;  // not b - a + s - 1: s may be ~2^63
  for (index_t ih = 0; ih < rows.in; ++ih) {
    for (index_t oj = 0; oj < ow; ++oj) v[oj] = T(0);
    for (index_t oi = rows.first[ih]; oi < rows.last[ih]; ++oi) {
      const T* grow = g + oi * ow;
      for (index_t oj = 0; oj < ow; ++oj) v[oj] += grow[oj];
    }
    T* row = dx + ih * W;
    reader_sums(row, v, cols, 0, a);
    reader_sums(row, v, cols, b, W);
    for (index_t q = 0; q < s && a + q < b; ++q) {
      const index_t i0 = a + q, cnt = (b - i0 - 1) / s + 1;
      const index_t n = readers((i0 + cols.p) % s, cols.k, s);
      T* sum = acc + q * span;
      for (index_t j = 0; j < cnt; ++j) sum[j] = T(0);
      if (n == 0) continue;
      const T* v0 = v + ((i0 + cols.p) / s - n + 1);
      for (index_t t = 0; t < n; ++t)
        for (index_t j = 0; j < cnt; ++j) sum[j] += v0[t + j];
    }
    T* out = row + a;
    if (s == 1) {
      for (index_t j = 0; j < b - a; ++j) out[j] = acc[j];
    } else if (s == 2) {
      const T *e = acc, *o = acc + span;
      const index_t pairs = (b - a) / 2;
      for (index_t j = 0; j < pairs; ++j) {
        out[2 * j] = e[j];
        out[2 * j + 1] = o[j];
      }
      if ((b - a) % 2) out[2 * pairs] = e[pairs];
    } else {
      for (index_t j = 0; j < b - a; ++j) out[j] = acc[(j % s) * span + j / s];
    }
  }
}

}  // namespace fastconv::cpu::avgrows
