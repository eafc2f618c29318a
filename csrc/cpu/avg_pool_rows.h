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

// whole_sums for a window K wide known at compile time: one pass, the taps in registers.
template <int K, typename T>
__attribute__((always_inline)) inline void whole_sums_k(T* h, const T* x0, index_t n, index_t s) {
  if (s == 2) {
    for (index_t j = 0; j < n; ++j) {
      T acc = T(0);
      for (int t = 0; t < K; ++t) acc += x0[2 * j + t];
      h[j] = acc;
    }
  } else {
    for (index_t j = 0; j < n; ++j) {
      T acc = T(0);
      for (int t = 0; t < K; ++t) acc += x0[j * s + t];
      h[j] = acc;
    }
  }
}

// h[j] = the sum from +0 of x0[j*s], x0[j*s + 1], ... x0[j*s + k - 1], for j < n: in one pass
// for windows 2 or 3 wide, else one pass per tap, each over n outputs.
template <typename T>
__attribute__((always_inline)) inline void whole_sums(T* h, const T* x0, index_t n, index_t k,
                                                      index_t s) {
  if (k == 2) return whole_sums_k<2>(h, x0, n, s);
  if (k == 3) return whole_sums_k<3>(h, x0, n, s);
  for (index_t j = 0; j < n; ++j) h[j] = T(0);
  for (index_t t = 0; t < k && n > 0; ++t) {
    const T* b = x0 + t;
    if (s == 1) {
      for (index_t j = 0; j < n; ++j) h[j] += b[j];
    } else if (s == 2) {
      for (index_t j = 0; j < n; ++j) h[j] += b[2 * j];
    } else {
      for (index_t j = 0; j < n; ++j) h[j] += b[j * s];
    }
  }
}

// Inputs [i0, i1) of d (indices relative to d), each the sum from +0 of its readers' v in
// ascending order, the readers of input i being v[(i + p) / s - n + 1 ... (i + p) / s] with n
// from its phase. acc (up to 2 (i1 - i0)) holds one stride phase's sums, contiguously.
template <typename T>
__attribute__((always_inline)) inline void regular_sums(T* d, const T* v, index_t i0, index_t i1,
                                                        T* acc, const Axis& cols) {
  const index_t s = cols.s, count = i1 - i0;
  if (count <= 0) return;
  const index_t span = (count - 1) / s + 1;  // not count + s - 1: s may be ~2^63
  for (index_t q = 0; q < s && q < count; ++q) {
    const index_t first = i0 + q, cnt = (i1 - first - 1) / s + 1;
    const index_t n = readers((first + cols.p) % s, cols.k, s);
    T* sum = acc + q * span;
    if (n == 0) {
      for (index_t j = 0; j < cnt; ++j) sum[j] = T(0);
      continue;
    }
    const T* v0 = v + ((first + cols.p) / s - n + 1);
    if (n == 1) {
      for (index_t j = 0; j < cnt; ++j) sum[j] = T(0) + v0[j];
    } else if (n == 2) {
      for (index_t j = 0; j < cnt; ++j) sum[j] = (T(0) + v0[j]) + v0[j + 1];
    } else {
      for (index_t j = 0; j < cnt; ++j) sum[j] = T(0);
      for (index_t t = 0; t < n; ++t)
        for (index_t j = 0; j < cnt; ++j) sum[j] += v0[t + j];
    }
  }
  T* out = d + i0;
  if (s == 1) {
    for (index_t j = 0; j < count; ++j) out[j] = acc[j];
  } else if (s == 2) {
    const T *e = acc, *o = acc + span;
    const index_t pairs = count / 2;
    for (index_t j = 0; j < pairs; ++j) {
      out[2 * j] = e[j];
      out[2 * j + 1] = o[j];
    }
    if (count % 2) out[2 * pairs] = e[pairs];
  } else {
    for (index_t j = 0; j < count; ++j) out[j] = acc[(j % s) * span + j / s];
  }
}

// Where each row is exactly ow strides wide (W = ow * s), output (r, oj)'s window starts at
// (r * ow + oj) * s - p in the flat plane and input (r, i)'s readers are at (r * W + i + p) / s in
// the flat (H, ow) sums: one long pass over the plane then does every row's interior at once. The
// edge elements in between get wrong sums (their windows or readers wrap to the next row, still
// inside the plane), which the per-element loops then overwrite.
inline bool flat_rows(const Axis& rows, const Axis& cols) {
  return rows.in > 0 && cols.hi > cols.lo && cols.in == cols.out * cols.s;
}

// Rows per flat pass of the backward: about 16K inputs, at least one row.
inline index_t flat_block_rows(index_t W) {
  return W < (index_t(1) << 14) ? (index_t(1) << 14) / (W > 0 ? W : 1) : 1;
}

// y (oh, ow) = window sums of x (H, W) / div (oh, ow); hs (H, ow) is scratch.
template <typename T>
FC_SIMD_CLONES void forward_plane(T* y, const T* x, T* hs, const T* div, const Axis& rows,
                                  const Axis& cols) {
  const index_t W = cols.in, ow = cols.out, lo = cols.lo, hi = cols.hi, H = rows.in;
  const index_t k = cols.k, s = cols.s;
  if (flat_rows(rows, cols)) {
    whole_sums(hs + lo, x + (lo * s - cols.p), (H - 1) * ow + hi - lo, k, s);
  } else if (hi > lo) {
    for (index_t r = 0; r < H; ++r) whole_sums(hs + r * ow + lo, x + r * W + (lo * s - cols.p),
                                               hi - lo, k, s);
  }
  for (index_t r = 0; r < H; ++r) {
    window_sums(hs + r * ow, x + r * W, cols, 0, lo);
    window_sums(hs + r * ow, x + r * W, cols, hi, ow);
  }
  // Down each window's rows from its first row's sums, then the division: in one pass for windows
  // two or three rows tall (the same operations in the same order), else one pass per row.
  for (index_t oi = 0; oi < rows.out; ++oi) {
    T* yrow = y + oi * ow;
    const T* d = div + oi * ow;
    const T* h0 = hs + rows.begin[oi] * ow;
    const index_t tall = rows.end[oi] - rows.begin[oi];
    if (tall == 2) {
      for (index_t oj = 0; oj < ow; ++oj) yrow[oj] = (h0[oj] + h0[ow + oj]) / d[oj];
    } else if (tall == 3) {
      for (index_t oj = 0; oj < ow; ++oj)
        yrow[oj] = ((h0[oj] + h0[ow + oj]) + h0[2 * ow + oj]) / d[oj];
    } else {
      for (index_t oj = 0; oj < ow; ++oj) yrow[oj] = h0[oj];
      for (index_t r = 1; r < tall; ++r)
        for (index_t oj = 0; oj < ow; ++oj) yrow[oj] += h0[r * ow + oj];
      for (index_t oj = 0; oj < ow; ++oj) yrow[oj] /= d[oj];
    }
  }
}

// dx (H, W) from dy (oh, ow): g = dy / div, v = the sum of g over the output rows reading each
// input row, then each input the sum of v over its output columns. g (oh * ow), v (H * ow) and
// acc (2 W min(H, flat_block_rows(W))) are scratch.
template <typename T>
FC_SIMD_CLONES void backward_plane(T* dx, const T* dy, T* g, T* v, T* acc, const T* div,
                                   const Axis& rows, const Axis& cols) {
  const index_t W = cols.in, ow = cols.out, a = cols.in_lo, b = cols.in_hi, H = rows.in;
  for (index_t i = 0; i < rows.out * ow; ++i) g[i] = dy[i] / div[i];
  for (index_t ih = 0; ih < H; ++ih) {
    T* vrow = v + ih * ow;
    const index_t tall = rows.last[ih] - rows.first[ih];
    const T* g0 = tall > 0 ? g + rows.first[ih] * ow : g;
    if (tall == 1) {
      for (index_t oj = 0; oj < ow; ++oj) vrow[oj] = T(0) + g0[oj];
    } else if (tall == 2) {
      for (index_t oj = 0; oj < ow; ++oj) vrow[oj] = (T(0) + g0[oj]) + g0[ow + oj];
    } else {
      for (index_t oj = 0; oj < ow; ++oj) vrow[oj] = T(0);
      for (index_t r = 0; r < tall; ++r)
        for (index_t oj = 0; oj < ow; ++oj) vrow[oj] += g0[r * ow + oj];
    }
  }
  // Flat as in flat_rows, when every phase's first input is regular (so no read falls before v),
  // a block of rows at a time (acc's size stays bounded).
  if (H > 0 && b - a >= cols.s && W == ow * cols.s) {
    const index_t block = flat_block_rows(W);
    for (index_t r0 = 0; r0 < H; r0 += block) {
      const index_t r1 = H - r0 < block ? H : r0 + block;
      regular_sums(dx + r0 * W, v + r0 * ow, a, (r1 - r0 - 1) * W + b, acc, cols);
    }
  } else {
    for (index_t ih = 0; ih < H; ++ih) regular_sums(dx + ih * W, v + ih * ow, a, b, acc, cols);
  }
  for (index_t ih = 0; ih < H; ++ih) {
    reader_sums(dx + ih * W, v + ih * ow, cols, 0, a);
    reader_sums(dx + ih * W, v + ih * ow, cols, b, W);
  }
}

}  // namespace fastconv::cpu::avgrows
