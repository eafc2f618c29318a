#include "cpu/pool.h"

#include <algorithm>
#include <cstddef>

#include "cpu/avg_pool_2x2.h"
#include "cpu/avg_pool_rows.h"
#include "cpu/pool_tables.h"
#include "cpu/threads.h"
#include "cpu/workspace.h"

// The average pools (the max pools: pool_max.cpp).
namespace fastconv::cpu {
namespace {

using pooltab::AxisTables;
using pooltab::axis_tables;
using pooltab::is_2x2_s2;
using pooltab::kThreadSlot;
using pooltab::plane_team;

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

}  // namespace

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

template void average_pool2d_forward<float>(float*, const float*, const Pool2dShape&, bool);
template void average_pool2d_forward<double>(double*, const double*, const Pool2dShape&, bool);
template void average_pool2d_backward<float>(float*, const float*, const Pool2dShape&, bool);
template void average_pool2d_backward<double>(double*, const double*, const Pool2dShape&, bool);

}  // namespace fastconv::cpu
