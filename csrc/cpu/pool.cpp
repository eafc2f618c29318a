#include "cpu/pool.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "cpu/avg_pool_2x2.h"
#include "cpu/avg_pool_rows.h"
#include "cpu/bit_select.h"
#include "cpu/pool_2x2.h"
#include "cpu/pool_2x2_avx512.h"
#include "cpu/pool_rows.h"
#include "cpu/threads.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {
namespace {

// Index tables for one axis, built once per call so that the per-element loops do no division.
// Per output o: the clipped window [begin, end) and the divisor factor along this axis.
// Per input i: the outputs [first, last) whose windows contain i (for the gather backward).
struct AxisTables {
  const index_t *begin, *end, *extent, *first, *last;
};

AxisTables axis_tables(std::size_t slot, index_t in, index_t out, index_t k, index_t s, index_t p,
                       bool count_include_pad) {
  const SizeCalc size{"pool2d", "window index tables"};
  index_t* t = scratch<index_t>(
      slot, size.add(size.mul(3, size.count(out)), size.mul(2, size.count(in))), size);
  index_t *begin = t, *end = t + out, *extent = t + 2 * out, *first = t + 3 * out,
          *last = t + 3 * out + in;
  for (index_t o = 0; o < out; ++o) {
    const Window w = pool_window(o, k, s, p, in);
    begin[o] = w.begin;
    end[o] = w.end;
    extent[o] = count_include_pad ? w.padded_extent : w.end - w.begin;
  }
  for (index_t i = 0; i < in; ++i) {
    const OutRange r = pool_outputs_reading(i, k, s, p, out);
    first[i] = r.first;
    last[i] = r.last;
  }
  return {begin, end, extent, first, last};
}

// The winner of a window so far and its index, updated by one tap with pool_rows.h's rule, both
// selected by bits: which tap wins is data-dependent, and a branch mispredicts often on real data.
template <typename T>
inline void take(T& best, index_t& bi, T v, index_t i) {
  const bool t = poolrows::wins(v, best);
  best = select_bits(t, v, best);
  bi = select_bits(t, i, bi);
}

// Small problems stay on the calling thread: a parallel region costs more than they do.
inline bool worth_threads(const Pool2dShape& s) { return s.n * s.c * s.h * s.w > (1 << 15); }

// The team for a loop over planes: one thread where it is not worth more.
inline int plane_team(const Pool2dShape& s) { return worth_threads(s) ? team(s.n * s.c) : 1; }

// Scratch slots 0 and 1 hold the row and column index tables; this one, per-thread rows.
constexpr std::size_t kThreadSlot = 2;

// The common non-overlapping 2x2 stride-2 window with no padding, every window whole.
inline bool is_2x2_s2(const Pool2dShape& s) {
  return s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0 &&
         2 * s.oh <= s.h && 2 * s.ow <= s.w;
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

template <typename T>
void max_plane_2x2(T* yp, index_t* ap, const T* xp, const Pool2dShape& s) {
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
      T best = r0[c];
      index_t bi = 2 * oi * W + c;
      take(best, bi, r0[c + 1], 2 * oi * W + c + 1);
      take(best, bi, r1[c], (2 * oi + 1) * W + c);
      take(best, bi, r1[c + 1], (2 * oi + 1) * W + c + 1);
      yp[oi * s.ow + oj] = best;
      ap[oi * s.ow + oj] = bi;
    }
  }
}

template <typename T>
void max_plane(T* yp, index_t* ap, const T* xp, const Pool2dShape& s, const AxisTables& rows,
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
      ap[oi * s.ow + oj] = bi;
    }
  }
}

// Whether the 2x2 loops take their AVX-512 form (pool_2x2_avx512.h) on this CPU.
inline bool avx512_2x2() {
#if FC_SIMD_CLONES_ENABLED
  return pool2x2::avx512_available();
#else
  return false;
#endif
}

// Each input of a whole 2x2 window is read by that window alone; the rest are read by none. So
// each window writes its four inputs (the gradient at its argmax, zeros elsewhere), with the
// argmax turned into an offset inside the window instead of compared against every input.
template <typename T>
void max_back_plane_2x2(T* dxp, const T* dyp, const index_t* ap, const Pool2dShape& s,
                        bool avx512) {
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
  for (index_t oi = 0; oi < s.oh; ++oi) {
    T* r0 = dxp + 2 * oi * W;
    T* r1 = r0 + W;
    const index_t* arow = ap + oi * s.ow;
    const T* grow = dyp + oi * s.ow;
    for (index_t oj = vector ? s.ow : 0; oj < s.ow; ++oj) {
      const index_t at = arow[oj] - (2 * oi * W + 2 * oj);  // 0, 1, W or W + 1
      const T g = grow[oj];
      r0[2 * oj] = at == 0 ? g : T(0);
      r0[2 * oj + 1] = at == 1 ? g : T(0);
      r1[2 * oj] = at == W ? g : T(0);
      r1[2 * oj + 1] = at == W + 1 ? g : T(0);
    }
    for (index_t iw = 2 * s.ow; iw < W; ++iw) r0[iw] = r1[iw] = T(0);  // an odd last column
  }
  for (index_t ih = 2 * s.oh; ih < s.h; ++ih)  // an odd last row
    for (index_t iw = 0; iw < W; ++iw) dxp[ih * W + iw] = T(0);
}

}  // namespace

// pool_rows.h's two passes need int32 taps and rows; planes this wide keep the scalar loop.
inline bool rows_planes(const Pool2dShape& s) {
  constexpr index_t lim = index_t(1) << 30;
  return s.h < lim && s.w < lim && s.kw < lim && s.kh < lim;
}

// The output columns [lo, hi) whose windows lie wholly inside the row (no padding, no clipping).
template <typename T>
poolrows::Plane<T> rows_plane(const Pool2dShape& s, const AxisTables& rows,
                              const AxisTables& cols) {
  const index_t lo = s.ow < ceil_div(s.pw, s.sw) ? s.ow : ceil_div(s.pw, s.sw);
  index_t hi = s.kw > s.w ? 0 : (s.w - s.kw + s.pw) / s.sw + 1;
  hi = hi > s.ow ? s.ow : hi;
  const index_t ring = s.kh < s.h ? s.kh : s.h;
  return {s.h,       s.w,      s.oh,       s.ow,     s.kw,    s.sw,    s.pw,    lo,
          hi > lo ? hi : lo, ring, rows.begin, rows.end, cols.begin, cols.end, nullptr,
          nullptr,   nullptr,  nullptr};
}

template <typename T>
void max_pool2d_forward(T* y, index_t* argmax, const T* x, const Pool2dShape& s) {
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
// unchecked. The loops are pool_rows.h's back_plane.
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const index_t* argmax, const Pool2dShape& s) {
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
    const index_t* ap = argmax + pl * out_plane;
    if (fast)
      max_back_plane_2x2(dxp, dyp, ap, s, avx512);
    else
      poolrows::backward_plane(dxp, dyp, ap, g);
  }
}

// The average pool's view of one axis: the tables plus the run of whole windows and regular
// inputs that avg_pool_rows.h vectorises.
avgrows::Axis avg_axis(const AxisTables& t, index_t in, index_t out, index_t k, index_t s,
                       index_t p) {
  avgrows::Axis a{in, out, k, s, p, t.begin, t.end, t.first, t.last, 0, 0, 0, 0};
  avgrows::find_interior(a);
  return a;
}

// Every output's divisor as T, shared by all planes (scratch slot 3).
template <typename T>
const T* avg_divisors(const Pool2dShape& s, const AxisTables& rows, const AxisTables& cols,
                      const SizeCalc& size) {
  T* div = scratch<T>(3, size.mul(size.count(s.oh), size.count(s.ow)), size);
  for (index_t oi = 0; oi < s.oh; ++oi)
    for (index_t oj = 0; oj < s.ow; ++oj)
      div[oi * s.ow + oj] = T(pool_divisor(rows.extent[oi], cols.extent[oj]));
  return div;
}

// Separable: window sums along each input row first (hs, h x ow), then down the rows of each
// window, so the inner loops run contiguously over output columns (avg_pool_rows.h).
template <typename T>
void average_pool2d_forward(T* y, const T* x, const Pool2dShape& s, bool count_include_pad) {
  const index_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  if (is_2x2_s2(s)) {  // no padding: count_include_pad changes nothing
#pragma omp parallel for schedule(static) num_threads(plane_team(s))
    for (index_t pl = 0; pl < planes; ++pl)
      avg2x2::forward_plane(y + pl * out_plane, x + pl * in_plane, s.oh, s.ow, s.w);
    return;
  }
  const AxisTables rt = axis_tables(0, s.h, s.oh, s.kh, s.sh, s.ph, count_include_pad);
  const AxisTables ct = axis_tables(1, s.w, s.ow, s.kw, s.sw, s.pw, count_include_pad);
  const avgrows::Axis rows = avg_axis(rt, s.h, s.oh, s.kh, s.sh, s.ph);
  const avgrows::Axis cols = avg_axis(ct, s.w, s.ow, s.kw, s.sw, s.pw);
  const int threads = plane_team(s);
  const SizeCalc size{"average_pool2d_forward", "row sums scratch"};
  const T* div = avg_divisors<T>(s, rt, ct, size);
  const ThreadSlots<T> slots(kThreadSlot, threads, size.mul(size.count(s.h), size.count(s.ow)),
                             size);
#pragma omp parallel num_threads(threads)
  {
    T* hs = slots.mine();
#pragma omp for schedule(static)
    for (index_t pl = 0; pl < planes; ++pl)
      avgrows::forward_plane(y + pl * out_plane, x + pl * in_plane, hs, div, rows, cols);
  }
}

// Gather form: g = dy / divisor per output, then each input row sums g over the output rows
// reading it (v, contiguous over output columns), then each input sums v over its output columns.
template <typename T>
void average_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s, bool count_include_pad) {
  const index_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  if (is_2x2_s2(s)) {
#pragma omp parallel for schedule(static) num_threads(plane_team(s))
    for (index_t pl = 0; pl < planes; ++pl)
      avg2x2::backward_plane(dx + pl * in_plane, dy + pl * out_plane, s.oh, s.ow, s.h, s.w);
    return;
  }
  const AxisTables rt = axis_tables(0, s.h, s.oh, s.kh, s.sh, s.ph, count_include_pad);
  const AxisTables ct = axis_tables(1, s.w, s.ow, s.kw, s.sw, s.pw, count_include_pad);
  const avgrows::Axis rows = avg_axis(rt, s.h, s.oh, s.kh, s.sh, s.ph);
  const avgrows::Axis cols = avg_axis(ct, s.w, s.ow, s.kw, s.sw, s.pw);
  const int threads = plane_team(s);
  const SizeCalc size{"average_pool2d_backward", "gradient scratch"};
  const T* div = avg_divisors<T>(s, rt, ct, size);
  // g (out_plane), v (h * ow), acc (the phase sums of one pass's regular inputs: fewer than
  // n + min(sw, n) for n of them, so 2 w times the rows in a pass).
  const index_t pass_rows = std::min(s.h, avgrows::flat_block_rows(s.w));
  const ThreadSlots<T> slots(
      kThreadSlot, threads,
      size.add(size.add(size.count(out_plane), size.mul(size.count(s.h), size.count(s.ow))),
               size.mul(2, size.mul(size.count(s.w), size.count(pass_rows)))),
      size);
#pragma omp parallel num_threads(threads)
  {
    T* g = slots.mine();
    T* v = g + out_plane;
    T* acc = v + s.h * s.ow;
#pragma omp for schedule(static)
    for (index_t pl = 0; pl < planes; ++pl)
      avgrows::backward_plane(dx + pl * in_plane, dy + pl * out_plane, g, v, acc, div, rows,
                              cols);
  }
}

template void max_pool2d_forward<float>(float*, index_t*, const float*, const Pool2dShape&);
template void max_pool2d_forward<double>(double*, index_t*, const double*, const Pool2dShape&);
template void max_pool2d_backward<float>(float*, const float*, const index_t*, const Pool2dShape&);
template void max_pool2d_backward<double>(double*, const double*, const index_t*,
                                          const Pool2dShape&);
template void average_pool2d_forward<float>(float*, const float*, const Pool2dShape&, bool);
template void average_pool2d_forward<double>(double*, const double*, const Pool2dShape&, bool);
template void average_pool2d_backward<float>(float*, const float*, const Pool2dShape&, bool);
template void average_pool2d_backward<double>(double*, const double*, const Pool2dShape&, bool);

}  // namespace fastconv::cpu
