// Splitting a row of values into its m phases (and back), eight tiles at a time, for the row-wise
// Winograd transforms (cpu/winograd_rows.h; internal to them).
//
// Eight tiles are one 8-lane vector per phase: the split is two rounds of two-source shuffles
// (GCC/Clang vector extensions, so each SIMD clone of the caller gets its own instructions: one
// permute each under AVX2 or AVX-512), a quarter of the shuffles that a 4x4 SSE transpose per
// four tiles took, and 32-byte stores.
#pragma once

#include <cstring>

#include "fastconv/geometry.h"

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FC_WINO_SHUFFLE 1
#endif
#endif
#ifndef FC_WINO_SHUFFLE
#define FC_WINO_SHUFFLE 0
#endif

namespace fastconv::cpu::wino {

#if FC_WINO_SHUFFLE
// Eight floats. Only ever a local: a vector passed or returned by value would change the ABI
// between the clones (and GCC warns about it).
typedef float F8 __attribute__((vector_size(32)));

#define FC_LOAD8(v, p) std::memcpy(&(v), (p), sizeof(F8))
#define FC_STORE8(p, v) std::memcpy((p), &(v), sizeof(F8))

// dst[q*stride + t] = src[t*M + q] for the eight tiles t < 8 and the M = 4 (or 2) phases q.
template <int M>
__attribute__((always_inline)) inline void split8(float* dst, index_t stride, const float* src) {
  if constexpr (M == 4) {
    F8 l0, l1, l2, l3;
    FC_LOAD8(l0, src);
    FC_LOAD8(l1, src + 8);
    FC_LOAD8(l2, src + 16);
    FC_LOAD8(l3, src + 24);
    // Phases 0|1 and 2|3 of tiles 0..3 (from l0, l1) and of tiles 4..7 (from l2, l3).
    const F8 a01 = __builtin_shufflevector(l0, l1, 0, 4, 8, 12, 1, 5, 9, 13);
    const F8 a23 = __builtin_shufflevector(l0, l1, 2, 6, 10, 14, 3, 7, 11, 15);
    const F8 b01 = __builtin_shufflevector(l2, l3, 0, 4, 8, 12, 1, 5, 9, 13);
    const F8 b23 = __builtin_shufflevector(l2, l3, 2, 6, 10, 14, 3, 7, 11, 15);
    const F8 p0 = __builtin_shufflevector(a01, b01, 0, 1, 2, 3, 8, 9, 10, 11);
    const F8 p1 = __builtin_shufflevector(a01, b01, 4, 5, 6, 7, 12, 13, 14, 15);
    const F8 p2 = __builtin_shufflevector(a23, b23, 0, 1, 2, 3, 8, 9, 10, 11);
    const F8 p3 = __builtin_shufflevector(a23, b23, 4, 5, 6, 7, 12, 13, 14, 15);
    FC_STORE8(dst, p0);
    FC_STORE8(dst + stride, p1);
    FC_STORE8(dst + 2 * stride, p2);
    FC_STORE8(dst + 3 * stride, p3);
  } else {
    F8 l0, l1;
    FC_LOAD8(l0, src);
    FC_LOAD8(l1, src + 8);
    const F8 p0 = __builtin_shufflevector(l0, l1, 0, 2, 4, 6, 8, 10, 12, 14);
    const F8 p1 = __builtin_shufflevector(l0, l1, 1, 3, 5, 7, 9, 11, 13, 15);
    FC_STORE8(dst, p0);
    FC_STORE8(dst + stride, p1);
  }
}

#undef FC_LOAD8
#undef FC_STORE8
#endif

}  // namespace fastconv::cpu::wino
