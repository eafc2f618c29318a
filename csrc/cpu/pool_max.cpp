// The max pools, forward and backward, with int64 flat indices or uint8 window codes (I =
// index_t or std::uint8_t; cpu/pool.h). The average pools: pool.cpp.
#include <cstdint>
#include <type_traits>

#include "cpu/bit_select.h"
#include "cpu/pool.h"
#include "cpu/pool_2x2.h"
#include "cpu/pool_2x2_avx512.h"
#include "cpu/pool_rows.h"
#include "cpu/pool_tables.h"
#include "cpu/threads.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {
namespace {

using pooltab::AxisTables;
using pooltab::axis_tables;
using pooltab::is_2x2_s2;
using pooltab::kThreadSlot;
using pooltab::plane_team;

template <typename I>
constexpr bool kCodes = std::is_same_v<I, std::uint8_t>;

// The winner of a window so far and its index, updated by one tap with pool_rows.h's rule, both
// selected by bits: which tap wins is data-dependent, and a branch mispredicts often on real data.
template <typename T>
inline void take(T& best, index_t& bi, T v, index_t i) {
  const bool t = poolrows::wins(v, best);
  best = select_bits(t, v, best);
  bi = select_bits(t, i, bi);
}

// Whole planes go through pool_2x2.h's vector loops (float only, rows of at least 4 windows and
// narrower than 2^31 - 1), the rest through the scalar loops: both select with the same
// comparisons, so the bits agree.
template <typename T>
bool vector_planes(const Pool2dShape& s) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>)
    return s.ow >= pool2x2::kWindows && s.w < (index_t(1) << 31) - 1;
#endif
  (void)s;
  return false;
}

// Whether the 2x2 backward takes its AVX-512 form (pool_2x2_avx512.h) on this CPU.
inline bool avx512_2x2() {
#if FC_SIMD_CLONES_ENABLED
  return pool2x2::avx512_available();
#else
  return false;
#endif
}

template <typename T, typename I>
void max_plane_2x2(T* yp, I* ap, const T* xp, const Pool2dShape& s) {
  const index_t W = s.w;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>)
    if (vector_planes<T>(s)) return pool2x2::forward_plane(yp, ap, xp, s.oh, s.ow, W);
#endif
  for (index_t oi = 0; oi < s.oh; ++oi) {
    const T* r0 = xp + 2 * oi * W;
    const T* r1 = r0 + W;
    for (index_t oj = 0; oj < s.ow; ++oj) {
      const index_t c = 2 * oj;
      // Tap (di, dj)'s index: its code di * 2 + dj, or its flat index.
      const auto at = [&](index_t di, index_t dj) {
        return kCodes<I> ? 2 * di + dj : (2 * oi + di) * W + c + dj;
      };
      T best = r0[c];
      index_t bi = at(0, 0);
      take(best, bi, r0[c + 1], at(0, 1));
      take(best, bi, r1[c], at(1, 0));
      take(best, bi, r1[c + 1], at(1, 1));
      yp[oi * s.ow + oj] = best;
      ap[oi * s.ow + oj] = static_cast<I>(bi);
    }
  }
}

// The scalar scan for planes too wide for pool_rows.h (2^30 and up).
template <typename T, typename I>
void max_plane(T* yp, I* ap, const T* xp, const Pool2dShape& s, const AxisTables& rows,
               const AxisTables& cols) {
  for (index_t oi = 0; oi < s.oh; ++oi) {
    const index_t hb = rows.begin[oi], he = rows.end[oi];
    for (index_t oj = 0; oj < s.ow; ++oj) {
      const index_t wb = cols.begin[oj], we = cols.end[oj];
      index_t bi = hb * s.w + wb;
      T best = xp[bi];
      // Each window row's first maximum on its own short chain, then the rows in order: the
      // same winner as one raster scan, but the core can overlap the rows.
      for (index_t r = hb; r < he; ++r) {
        const T* row = xp + r * s.w;
        T rb = row[wb];
        index_t rc = wb;
        for (index_t c = wb + 1; c < we; ++c) take(rb, rc, row[c], c);
        take(best, bi, rb, r * s.w + rc);
      }
      yp[oi * s.ow + oj] = best;
      if constexpr (kCodes<I>)
        ap[oi * s.ow + oj] = static_cast<I>((bi / s.w - (oi * s.sh - s.ph)) * s.kw +
                                            (bi % s.w - (oj * s.sw - s.pw)));
      else
        ap[oi * s.ow + oj] = bi;
    }
  }
}

// Each input of a whole 2x2 window is read by that window alone; the rest are read by none. So
// each window writes its four inputs (the gradient at its argmax, zeros elsewhere), with the
// argmax turned into an offset inside the window instead of compared against every input.
template <typename T, typename I>
void max_back_plane_2x2(T* dxp, const T* dyp, const I* ap, const Pool2dShape& s, bool avx512) {
  const index_t W = s.w;
  bool vector = false;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>)
    if (vector_planes<T>(s)) {
#if FC_SIMD_CLONES_ENABLED
      if (avx512)
        pool2x2::backward_plane_avx512(dxp, dyp, ap, s.oh, s.ow, W);
      else
#endif
        pool2x2::backward_plane(dxp, dyp, ap, s.oh, s.ow, W);
      vector = true;
    }
#endif
  (void)avx512;
  // A window's four inputs as codes (0, 1, 2, 3) or as offsets from its first (0, 1, W, W + 1).
  const index_t i1 = 1, i2 = kCodes<I> ? 2 : W, i3 = kCodes<I> ? 3 : W + 1;
  for (index_t oi = 0; oi < s.oh; ++oi) {
    T* r0 = dxp + 2 * oi * W;
    T* r1 = r0 + W;
    const I* arow = ap + oi * s.ow;
    const T* grow = dyp + oi * s.ow;
    for (index_t oj = vector ? s.ow : 0; oj < s.ow; ++oj) {
      const index_t at = kCodes<I> ? index_t(arow[oj])
                                   : index_t(arow[oj]) - (2 * oi * W + 2 * oj);
      const T g = grow[oj];
      r0[2 * oj] = at == 0 ? g : T(0);
      r0[2 * oj + 1] = at == i1 ? g : T(0);
      r1[2 * oj] = at == i2 ? g : T(0);
      r1[2 * oj + 1] = at == i3 ? g : T(0);
    }
    for (index_t iw = 2 * s.ow; iw < W; ++iw) r0[iw] = r1[iw] = T(0);  // an odd last column
  }
  for (index_t ih = 2 * s.oh; ih < s.h; ++ih)  // an odd last row
    for (index_t iw = 0; iw < W; ++iw) dxp[ih * W + iw] = T(0);
}

// pool_rows.h's two passes need int32 taps and rows; planes this wide keep the scalar loop.
inline bool rows_planes(const Pool2dShape& s) {
  constexpr index_t lim = index_t(1) << 30;
  return s.h < lim && s.w < lim && s.kw < lim && s.kh < lim;
}

// The output columns [lo, hi) whose windows lie wholly inside the row (no padding, no clipping).
template <typename T>
poolrows::Plane<T> rows_plane(const Pool2dShape& s, const AxisTables& rows,
                              const AxisTables& cols) {
  poolrows::Plane<T> g{};
  g.h = s.h;
  g.w = s.w;
  g.oh = s.oh;
  g.ow = s.ow;
  g.kw = s.kw;
  g.sw = s.sw;
  g.pw = s.pw;
  g.lo = s.ow < ceil_div(s.pw, s.sw) ? s.ow : ceil_div(s.pw, s.sw);
  const index_t hi = s.kw > s.w ? 0 : (s.w - s.kw + s.pw) / s.sw + 1;
  g.hi = hi > s.ow ? s.ow : hi;
  g.hi = g.hi > g.lo ? g.hi : g.lo;
  g.ring = s.kh < s.h ? s.kh : s.h;
  g.row_begin = rows.begin;
  g.row_end = rows.end;
  g.col_begin = cols.begin;
  g.col_end = cols.end;
  g.sh = s.sh;
  g.ph = s.ph;
  // Only codes (0-255) are compared with it: over 256 taps, every code names one.
  g.taps = s.kh <= 256 && s.kw <= 256 ? s.kh * s.kw : 256;
  return g;
}

}  // namespace

template <typename T, typename I>
void max_pool2d_forward(T* y, I* argmax, const T* x, const Pool2dShape& s) {
  const index_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const AxisTables rows = axis_tables(0, s.h, s.oh, s.kh, s.sh, s.ph, true);
  const AxisTables cols = axis_tables(1, s.w, s.ow, s.kw, s.sw, s.pw, true);
  if (is_2x2_s2(s) || !rows_planes(s)) {
    const bool fast = is_2x2_s2(s);
#pragma omp parallel for schedule(static) num_threads(plane_team(s))
    for (index_t pl = 0; pl < planes; ++pl) {
      if (fast)
        max_plane_2x2(y + pl * out_plane, argmax + pl * out_plane, x + pl * in_plane, s);
      else
        max_plane(y + pl * out_plane, argmax + pl * out_plane, x + pl * in_plane, s, rows, cols);
    }
    return;
  }
  const int threads = plane_team(s);
  const SizeCalc size{"max_pool2d_forward", "row maxima scratch"};
  const std::size_t grid = size.mul(size.count(s.kh < s.h ? s.kh : s.h), size.count(s.ow));
  const ThreadSlots<T> bests(kThreadSlot, threads, grid, size);
  const ThreadSlots<std::int32_t> taps(kThreadSlot + 1, threads,
                                       size.add(grid, size.mul(2, size.count(s.ow))), size);
  const poolrows::Plane<T> shared = rows_plane<T>(s, rows, cols);
#pragma omp parallel num_threads(threads)
  {
    poolrows::Plane<T> g = shared;
    g.best = bests.mine();
    g.tap = taps.mine();
    g.rsel = g.tap + g.ring * s.ow;
    g.tsel = g.rsel + s.ow;
#pragma omp for schedule(static)
    for (index_t pl = 0; pl < planes; ++pl)
      poolrows::forward_plane(y + pl * out_plane, argmax + pl * out_plane, x + pl * in_plane, g);
  }
}

// Each output adds its gradient to the input its index names, outputs in raster order: every
// input element sums its readers in that order (from +0), as a gather over its readers would,
// but at a cost per output instead of per (input, reader) pair. An index outside its output's
// window (indices are not range-checked, only used) names no input and adds nothing: it is
// compared with each window row's span in unsigned arithmetic, never used to address memory
// unchecked; a window code, with the taps and the plane's bounds. The loops are
// pool_rows.h's back_plane.
template <typename T, typename I>
void max_pool2d_backward(T* dx, const T* dy, const I* argmax, const Pool2dShape& s) {
  const index_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const bool fast = is_2x2_s2(s);
  const AxisTables rows = axis_tables(0, s.h, s.oh, s.kh, s.sh, s.ph, true);
  const AxisTables cols = axis_tables(1, s.w, s.ow, s.kw, s.sw, s.pw, true);
  const poolrows::Plane<T> g = rows_plane<T>(s, rows, cols);
  const bool avx512 = fast && avx512_2x2();
#pragma omp parallel for schedule(static) num_threads(plane_team(s))
  for (index_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * in_plane;
    const T* dyp = dy + pl * out_plane;
    const I* ap = argmax + pl * out_plane;
    if (fast)
      max_back_plane_2x2(dxp, dyp, ap, s, avx512);
    else
      poolrows::backward_plane(dxp, dyp, ap, g);
  }
}

#define FC_MAX_POOL(T, I)                                                               \
  template void max_pool2d_forward<T, I>(T*, I*, const T*, const Pool2dShape&);         \
  template void max_pool2d_backward<T, I>(T*, const T*, const I*, const Pool2dShape&);
FC_MAX_POOL(float, index_t)
FC_MAX_POOL(double, index_t)
FC_MAX_POOL(float, std::uint8_t)
FC_MAX_POOL(double, std::uint8_t)
#undef FC_MAX_POOL

}  // namespace fastconv::cpu
