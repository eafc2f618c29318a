// Splitting a row of values into its m phases, eight tiles at a time, for the row-wise Winograd
// transforms (cpu/winograd_rows.h), and the 8 x 8 transpose of the weight gradient's input.
//
// Eight tiles are one 8-lane vector per phase: the split is two rounds of two-source shuffles
// (GCC/Clang vector extensions, so each SIMD clone of the caller gets its own instructions: one
// permute each under AVX2 or AVX-512), a quarter of the shuffles that a 4x4 SSE transpose per
// four tiles took, and 32-byte stores.
#pragma once

#include <cstring>

#include "cpu/simd_clones.h"
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

#endif

// dst[t * ldd + r] = src[r * lds + t] for r < rows and t < cols, both multiples of 8: 8 x 8
// blocks through three rounds of shuffles (the weight gradient's transformed input, tile-major,
// so that its GEMMs need no transpose; see winograd.cpp).
FC_SIMD_CLONES
inline void transpose8(float* dst, index_t ldd, const float* src, index_t lds, index_t rows,
                       index_t cols) {
  for (index_t r = 0; r < rows; r += 8) {
    for (index_t t = 0; t < cols; t += 8) {
#if FC_WINO_SHUFFLE
      F8 v[8];
      for (int i = 0; i < 8; ++i) FC_LOAD8(v[i], src + (r + i) * lds + t);
      F8 a[8], b[8];
      for (int i = 0; i < 8; i += 2) {
        a[i] = __builtin_shufflevector(v[i], v[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        a[i + 1] = __builtin_shufflevector(v[i], v[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
      }
      for (int i = 0; i < 8; i += 4) {
        for (int h = 0; h < 2; ++h) {
          b[i + 2 * h] = __builtin_shufflevector(a[i + h], a[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
          b[i + 2 * h + 1] =
              __builtin_shufflevector(a[i + h], a[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
      }
      // b[j] (j < 4) holds columns j and j + 4 of rows 0..3, b[4 + j] those of rows 4..7.
      for (int j = 0; j < 4; ++j) {
        const F8 lo = __builtin_shufflevector(b[j], b[4 + j], 0, 1, 2, 3, 8, 9, 10, 11);
        const F8 hi = __builtin_shufflevector(b[j], b[4 + j], 4, 5, 6, 7, 12, 13, 14, 15);
        FC_STORE8(dst + (t + j) * ldd + r, lo);
        FC_STORE8(dst + (t + j + 4) * ldd + r, hi);
      }
#else
      for (index_t j = t; j < t + 8; ++j)
        for (index_t i = r; i < r + 8; ++i) dst[j * ldd + i] = src[i * lds + j];
#endif
    }
  }
}

#if FC_WINO_SHUFFLE
#undef FC_LOAD8
#undef FC_STORE8
#endif

}  // namespace fastconv::cpu::wino
