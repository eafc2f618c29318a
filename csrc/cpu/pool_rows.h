// Max pooling's general windows (any size, stride and padding), one plane per cloned call, in two
// passes. Internal to cpu/pool_max.cpp.
// 1. Each input row's best over every output column's window span: its first maximum in column
//    order (the value and its tap within the window), computed once per input row instead of
//    once per output row that reads it (a 3x3 stride-2 window shares every other row).
// 2. Per output row, its window rows' bests combined in row order.
// The same comparisons in the same order as pool_max.cpp's scalar max_plane (a later tap wins only
// if !(v <= best) and best is not NaN), so the same winner, index and bits: values are moved by
// selection only. Both passes run contiguously over output columns, which the compiler
// vectorises (stride 1 and 2 are compiled with a constant stride); the columns whose windows are
// clipped by the padding or the input's edge take the scalar loop in pass 1.
// Indices are int64 flat indices or uint8 window codes (cpu/pool.h); only the last store of
// pass 2 and the backward's decoding differ.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu/bit_select.h"
#include "cpu/simd_clones.h"
#include "fastconv/common.h"

namespace fastconv::cpu::poolrows {

// One plane's geometry and scratch. The output columns [lo, hi) have whole windows. Row and
// column window tables (clipped [begin, end) per output) come from pool_tables.h's AxisTables. Row
// bests live in a ring of `ring` rows (input row r in slot r % ring): an output row's window rows
// are at most kh consecutive rows, and its first row never precedes the one before's, so
// ring = min(kh, h) slots hold them all and a row is computed once. Taps and rows are int32: the
// caller uses this path only for planes and windows narrower than 2^30.
// For window codes: sh, ph and the window's taps (kh * kw; 256 where that is more, as no code
// reaches it).
template <typename T>
struct Plane {
  index_t h, w, oh, ow, kw, sw, pw, lo, hi, ring;
  const index_t *row_begin, *row_end, *col_begin, *col_end;
  index_t sh, ph, taps;
  T* best;              // (ring, ow): an input row's best per output column
  std::int32_t* tap;    // (ring, ow): its column within the window, from the window's padded start
  std::int32_t* rsel;   // (ow): the winning row, relative to the output row's first window row
  std::int32_t* tsel;   // (ow): the winning row's tap
};

// The window scan's rule, one tap at a time: a later tap wins only if !(v <= best) and best is
// not NaN (strictly greater keeps the first maximum on ties; the first NaN wins, then nothing
// beats it). `&`, not `&&`: no short-circuit for the compiler to turn into a branch.
template <typename T>
__attribute__((always_inline)) inline bool wins(T v, T best) {
  return !(v <= best) & (best == best);
}

// Values, taps and rows move by bits (bit_select.h): a blend in the vector loops, and no
// data-dependent branch in their scalar tails and the clipped columns (a floating-point ?:
// there becomes one, which mispredicts on real data).
using cpu::select_bits;

// Pass 1 for the whole windows of one input row, S the stride when it is a compile-time
// constant (0: the run-time sw). Tap-major, so each inner loop is one strided load, one compare
// and two selects per output column.
template <int S, typename T>
__attribute__((always_inline)) inline void row_whole(T* __restrict best,
                                                     std::int32_t* __restrict tap, const T* row,
                                                     const Plane<T>& g) {
  const index_t s = S > 0 ? S : g.sw;
  const T* x0 = row + (g.lo * s - g.pw);  // output column lo's first tap
  const index_t n = g.hi - g.lo;
  best += g.lo;
  tap += g.lo;
  for (index_t i = 0; i < n; ++i) {
    best[i] = x0[i * s];
    tap[i] = 0;
  }
  for (index_t t = 1; t < g.kw; ++t) {
    const T* xt = x0 + t;
    const auto tt = static_cast<std::int32_t>(t);
    for (index_t i = 0; i < n; ++i) {
      const T v = xt[i * s], b = best[i];
      const std::int32_t tb = tap[i];
      const bool m = wins(v, b);
      best[i] = select_bits(m, v, b);
      tap[i] = select_bits(m, tt, tb);
    }
  }
}

// Pass 1 for the clipped windows of one input row: the scalar scan over [begin, end).
template <typename T>
__attribute__((always_inline)) inline void row_clipped(T* best, std::int32_t* tap, const T* row,
                                                       const Plane<T>& g, index_t oj) {
  const index_t wb = g.col_begin[oj], we = g.col_end[oj];
  const index_t start = oj * g.sw - g.pw;
  T b = row[wb];
  auto c = static_cast<std::int32_t>(wb - start);
  for (index_t i = wb + 1; i < we; ++i) {
    const bool m = wins(row[i], b);
    b = select_bits(m, row[i], b);
    c = select_bits(m, static_cast<std::int32_t>(i - start), c);
  }
  best[oj] = b;
  tap[oj] = c;
}

template <int S, typename T>
__attribute__((always_inline)) inline void row_pass(const T* x, const Plane<T>& g, index_t r) {
  const T* row = x + r * g.w;
  T* best = g.best + (r % g.ring) * g.ow;
  std::int32_t* tap = g.tap + (r % g.ring) * g.ow;
  for (index_t oj = 0; oj < g.lo; ++oj) row_clipped(best, tap, row, g, oj);
  row_whole<S>(best, tap, row, g);
  for (index_t oj = g.hi; oj < g.ow; ++oj) row_clipped(best, tap, row, g, oj);
}

// Pass 2: output row oi from its window rows' bests, in row order; then the flat index
// (row * w + the window's padded start column + tap), or the window code (the row counted from
// the window's padded start row, times kw, + tap).
template <typename T, typename I>
__attribute__((always_inline)) inline void combine_row(T* __restrict y, I* __restrict a,
                                                       const Plane<T>& g, index_t oi) {
  const index_t hb = g.row_begin[oi], he = g.row_end[oi], ow = g.ow;
  std::int32_t* __restrict rsel = g.rsel;
  std::int32_t* __restrict tsel = g.tsel;
  const T* __restrict b0 = g.best + (hb % g.ring) * ow;
  const std::int32_t* __restrict t0 = g.tap + (hb % g.ring) * ow;
  for (index_t oj = 0; oj < ow; ++oj) {
    y[oj] = b0[oj];
    rsel[oj] = 0;
    tsel[oj] = t0[oj];
  }
  for (index_t r = hb + 1; r < he; ++r) {
    const T* __restrict br = g.best + (r % g.ring) * ow;
    const std::int32_t* __restrict tr = g.tap + (r % g.ring) * ow;
    const auto rr = static_cast<std::int32_t>(r - hb);
    for (index_t oj = 0; oj < ow; ++oj) {
      const T v = br[oj], b = y[oj];
      const std::int32_t rs = rsel[oj], ts = tsel[oj], tv = tr[oj];
      const bool m = wins(v, b);
      y[oj] = select_bits(m, v, b);
      rsel[oj] = select_bits(m, rr, rs);
      tsel[oj] = select_bits(m, tv, ts);
    }
  }
  if constexpr (std::is_same_v<I, std::uint8_t>) {
    const auto top = static_cast<std::int32_t>((hb - (oi * g.sh - g.ph)) * g.kw);
    const auto kw = static_cast<std::int32_t>(g.kw);
    for (index_t oj = 0; oj < ow; ++oj)
      a[oj] = static_cast<std::uint8_t>(top + rsel[oj] * kw + tsel[oj]);
  } else {
    const index_t base = hb * g.w - g.pw;
    for (index_t oj = 0; oj < ow; ++oj)
      a[oj] = base + oj * g.sw + static_cast<index_t>(rsel[oj]) * g.w + tsel[oj];
  }
}

// Each output row's window rows not yet in the ring are computed (pass 1), then combined.
template <int S, typename T, typename I>
__attribute__((always_inline)) inline void plane_rows(T* y, I* a, const T* x,
                                                      const Plane<T>& g) {
  index_t done = g.row_begin[0];  // rows below this are computed
  for (index_t oi = 0; oi < g.oh; ++oi) {
    const index_t he = g.row_end[oi];
    for (index_t r = done > g.row_begin[oi] ? done : g.row_begin[oi]; r < he; ++r)
      row_pass<S>(x, g, r);
    done = done > he ? done : he;
    combine_row(y + oi * g.ow, a + oi * g.ow, g, oi);
  }
}

template <typename T, typename I>
__attribute__((always_inline)) inline void plane(T* y, I* a, const T* x, const Plane<T>& g) {
  if (g.sw == 1)
    plane_rows<1>(y, a, x, g);
  else if (g.sw == 2)
    plane_rows<2>(y, a, x, g);
  else
    plane_rows<0>(y, a, x, g);
}

// The backward (the scatter of pool_max.cpp's max_pool2d_backward, see there): per output its
// index is checked against each of its window rows' spans in unsigned arithmetic, vectorised
// over a chunk of output columns; then each output adds its gradient, or +0 where the index
// names no input of its window (at the plane's first element, where +0 changes no bits). A
// window code is decoded to its input's row and column and checked against the taps and the
// plane: inside the plane is inside the window, as the code counts from the window's corner.
template <typename T, typename I>
__attribute__((always_inline)) inline void back_plane(T* __restrict dx, const T* __restrict dy,
                                                      const I* __restrict a,
                                                      const Plane<T>& g) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr index_t kChunk = 64;
  std::uint64_t ok[kChunk], pos[kChunk];
  T add[kChunk];
  std::memset(dx, 0, static_cast<std::size_t>(g.h * g.w) * sizeof(T));
  const auto W = static_cast<std::uint64_t>(g.w), H = static_cast<std::uint64_t>(g.h);
  for (index_t oi = 0; oi < g.oh; ++oi) {
    const auto hb = static_cast<std::uint64_t>(g.row_begin[oi]);
    const auto he = static_cast<std::uint64_t>(g.row_end[oi]);
    for (index_t j0 = 0; j0 < g.ow; j0 += kChunk) {
      const index_t n = g.ow - j0 < kChunk ? g.ow - j0 : kChunk;
      const T* gr = dy + oi * g.ow + j0;
      if constexpr (std::is_same_v<I, std::uint8_t>) {
        // di = code / kw as (code * ceil(2^16 / kw)) >> 16: exact for codes below 256 and any
        // kw (the error, under code / 2^16 < 1 / 256, cannot carry past the next integer), and
        // unlike a division or a table lookup it vectorises. All in uint64, as the flat path.
        const std::uint8_t* code = a + oi * g.ow + j0;
        const auto row0 = static_cast<std::uint64_t>(oi * g.sh - g.ph);
        const auto col0 = static_cast<std::uint64_t>(j0 * g.sw - g.pw);
        const auto kw = static_cast<std::uint64_t>(g.kw);
        const auto taps = static_cast<std::uint64_t>(g.taps);
        const std::uint64_t inv = ((std::uint64_t(1) << 16) + kw - 1) / kw;
        const auto sw = static_cast<std::uint64_t>(g.sw);
        // Widened first: a loop that loads bytes is vectorised 64 lanes at a time, so a row
        // of fewer outputs would run it scalar; this one runs 8 lanes of uint64.
        std::uint64_t wide[kChunk];
        for (index_t j = 0; j < n; ++j) wide[j] = code[j];
        for (index_t j = 0; j < n; ++j) {
          const std::uint64_t c = wide[j];
          const std::uint64_t di = (c * inv) >> 16, dj = c - di * kw;
          const std::uint64_t r = row0 + di, col = col0 + static_cast<std::uint64_t>(j) * sw + dj;
          ok[j] = std::uint64_t(0) - std::uint64_t((c < taps) & (r < H) & (col < W));
          pos[j] = (r * W + col) & ok[j];
        }
      } else {
        const auto* at = reinterpret_cast<const std::uint64_t*>(a + oi * g.ow + j0);
        const auto* wb = reinterpret_cast<const std::uint64_t*>(g.col_begin + j0);
        const auto* we = reinterpret_cast<const std::uint64_t*>(g.col_end + j0);
        for (index_t j = 0; j < n; ++j) ok[j] = 0;
        for (std::uint64_t r = hb; r < he; ++r) {
          const std::uint64_t rw = r * W;
          for (index_t j = 0; j < n; ++j)
            ok[j] |= std::uint64_t(0) - std::uint64_t(at[j] - rw - wb[j] < we[j] - wb[j]);
        }
        for (index_t j = 0; j < n; ++j) pos[j] = at[j] & ok[j];
      }
      for (index_t j = 0; j < n; ++j) {
        Bits b;
        std::memcpy(&b, gr + j, sizeof(T));
        b &= static_cast<Bits>(ok[j]);
        std::memcpy(add + j, &b, sizeof(T));
      }
      for (index_t j = 0; j < n; ++j) dx[pos[j]] += add[j];
    }
  }
}

// One cloned function per element and index type, and overloads to pick them by type.
#define FC_POOLROWS_CLONES(T, I, suffix)                                                    \
  FC_SIMD_CLONES inline void backward_plane_##suffix(T* dx, const T* dy, const I* a,        \
                                                     const Plane<T>& g) {                   \
    back_plane(dx, dy, a, g);                                                               \
  }                                                                                         \
  FC_SIMD_CLONES inline void forward_plane_##suffix(T* y, I* a, const T* x,                 \
                                                    const Plane<T>& g) {                    \
    plane(y, a, x, g);                                                                      \
  }                                                                                         \
  inline void backward_plane(T* dx, const T* dy, const I* a, const Plane<T>& g) {           \
    backward_plane_##suffix(dx, dy, a, g);                                                  \
  }                                                                                         \
  inline void forward_plane(T* y, I* a, const T* x, const Plane<T>& g) {                    \
    forward_plane_##suffix(y, a, x, g);                                                     \
  }

FC_POOLROWS_CLONES(float, index_t, f)
FC_POOLROWS_CLONES(double, index_t, d)
FC_POOLROWS_CLONES(float, std::uint8_t, f_codes)
FC_POOLROWS_CLONES(double, std::uint8_t, d_codes)
#undef FC_POOLROWS_CLONES

}  // namespace fastconv::cpu::poolrows
