// Average pooling's whole 2x2 stride-2 windows, one plane per cloned call (cpu/simd_clones.h):
// the general separable loops of cpu/pool.cpp spend a short variable-length loop per element
// here, where every output reads four inputs and every input is read once. The same additions in
// the same order as those loops (each row's pair summed from +0, the two rows added, divided by
// 4), so the same values, signed zeros included; only which operand's NaN a sum of two NaNs
// passes on may differ (the compiler may swap an addition's operands). Internal to cpu/pool.cpp.
#pragma once
#include "cpu/simd_clones.h"
#include "fastconv/common.h"

namespace fastconv::cpu::avg2x2 {

// y (oh, ow) from the top 2 oh rows of x (W wide).
template <typename T>
FC_SIMD_CLONES void forward_plane(T* y, const T* x, index_t oh, index_t ow, index_t W) {
  for (index_t oi = 0; oi < oh; ++oi) {
    const T* r0 = x + 2 * oi * W;
    const T* r1 = r0 + W;
    T* yr = y + oi * ow;
    for (index_t oj = 0; oj < ow; ++oj) {
      const T top = (T(0) + r0[2 * oj]) + r0[2 * oj + 1];
      const T bottom = (T(0) + r1[2 * oj]) + r1[2 * oj + 1];
      yr[oj] = (top + bottom) / T(4);
    }
  }
}

// dx (H, W) from dy (oh, ow): each window's four inputs get +0 + dy / 4 (the sum from +0 that
// the general gather makes), an odd last row or column +0.
template <typename T>
FC_SIMD_CLONES void backward_plane(T* dx, const T* dy, index_t oh, index_t ow, index_t H,
                                   index_t W) {
  for (index_t oi = 0; oi < oh; ++oi) {
    T* d0 = dx + 2 * oi * W;
    T* d1 = d0 + W;
    const T* g = dy + oi * ow;
    for (index_t oj = 0; oj < ow; ++oj) {
      const T v = T(0) + g[oj] / T(4);
      d0[2 * oj] = v;
      d0[2 * oj + 1] = v;
      d1[2 * oj] = v;
      d1[2 * oj + 1] = v;
    }
    for (index_t iw = 2 * ow; iw < W; ++iw) d0[iw] = d1[iw] = T(0);
  }
  for (index_t i = 2 * oh * W; i < H * W; ++i) dx[i] = T(0);
}

}  // namespace fastconv::cpu::avg2x2
