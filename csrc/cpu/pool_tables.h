// What the max and average pools share (cpu/pool_max.cpp, cpu/pool.cpp): per-axis window tables,
// the thread team for a loop over planes, the scratch slots, and the 2x2 stride-2 test.
#pragma once
#include <cstddef>

#include "cpu/threads.h"
#include "cpu/workspace.h"
#include "fastconv/geometry.h"

namespace fastconv::cpu::pooltab {

// Index tables for one axis, built once per call so that the per-element loops do no division.
// Per output o: the clipped window [begin, end) and the divisor factor along this axis.
// Per input i: the outputs [first, last) whose windows contain i (for the gather backward).
struct AxisTables {
  const index_t *begin, *end, *extent, *first, *last;
};

inline AxisTables axis_tables(std::size_t slot, index_t in, index_t out, index_t k, index_t s,
                              index_t p, bool count_include_pad) {
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

}  // namespace fastconv::cpu::pooltab
