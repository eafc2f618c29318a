// The 2x2 stride-2 max pool's backward with AVX-512, sixteen windows a step, the row's last
// partial step masked (no overlap, no scalar tail). Internal to cpu/pool_max.cpp, which calls it
// on CPUs that have x86-64-v4 (avx512_available, checked once) and pool_2x2.h's SSE loops
// elsewhere. Same rule and same bits as pool_2x2.h's backward_step: each window writes its
// gradient at its argmax and +0 at its other three inputs; an index naming none of the four
// leaves all four at +0.
//
// Why its own function rather than another FC_SIMD_CLONES clone of the SSE loop: the kernel is
// bound by memory (dy, the indices and dx; 22 MB at 64x64x28x28), and the clone of the 128-bit
// loop measured 0.27 ms where this one, 0.25 ms (2 threads, caches warm). With uint8 window
// codes instead of int64 indices (backward_plane_avx512's second form) the same shape measured
// 0.12 ms: the indices were 6.4 of the 22 MB.
#pragma once
#include <cstdint>

#include "cpu/simd_clones.h"
#include "fastconv/common.h"

#if FC_SIMD_CLONES_ENABLED
#include <immintrin.h>

namespace fastconv::cpu::pool2x2 {

// Whether this CPU runs the x86-64-v4 functions below; asked once.
inline bool avx512_available() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") != 0;
  }();
  return yes;
}

constexpr index_t kWide = 16;  // windows per AVX-512 step

// The step's active windows (left of them remain in the row) and the dx lanes they cover: the
// window lanes' low and high halves, each window two dx columns.
struct WideMasks {
  __mmask16 win, lo, hi;
};

__attribute__((target("arch=x86-64-v4"), always_inline)) inline WideMasks wide_masks(
    index_t left) {
  if (left >= kWide) return {0xffff, 0xffff, 0xffff};
  const auto bits = [](index_t n) {
    return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
  };
  return {bits(left), bits(2 * left), bits(left > 8 ? 2 * (left - 8) : 0)};
}

// Writes two dx rows' 2 * 16 columns from sixteen windows' gradients g and their in-window
// positions r (one int32 per window): the top row's columns get g where r equals lane pair
// top = (t0, t0 + 1), the bottom row's where it equals bot, +0 elsewhere.
__attribute__((target("arch=x86-64-v4"), always_inline)) inline void wide_store(
    float* d0, float* d1, __m512 g, __m512i r, __m512i top, __m512i bot, WideMasks m) {
  // Each window's value and position twice, for its two columns: windows 0-7, then 8-15.
  const __m512i first = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  const __m512 g0 = _mm512_permutexvar_ps(first, g), g1 = _mm512_permutexvar_ps(second, g);
  const __m512i r0 = _mm512_permutexvar_epi32(first, r), r1 = _mm512_permutexvar_epi32(second, r);
  _mm512_mask_storeu_ps(d0, m.lo, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(r0, top), g0));
  _mm512_mask_storeu_ps(d0 + 16, m.hi, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(r1, top), g1));
  _mm512_mask_storeu_ps(d1, m.lo, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(r0, bot), g0));
  _mm512_mask_storeu_ps(d1 + 16, m.hi, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(r1, bot), g1));
}

// pool_2x2.h's backward_plane for int64 flat indices: the (2 oh, 2 ow) top-left block of dx's
// plane (row length W < 2^31 - 1) from dy's (oh, ow) plane g and its indices a, ow >= 1. Each
// index minus its window's first input is checked to be at most W + 1 as an unsigned 64-bit
// value (so a stray one gets +0 everywhere: its gradient is not loaded), then compared in 32
// bits with 0, 1, W and W + 1, exact below 2^31.
__attribute__((target("arch=x86-64-v4"))) inline void backward_plane_avx512(
    float* dx, const float* g, const index_t* a, index_t oh, index_t ow, index_t W) {
  const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);  // windows' first columns
  const __m512i top = _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
  const __m512i bot = _mm512_add_epi32(top, _mm512_set1_epi32(static_cast<int>(W)));
  const __m512i last = _mm512_set1_epi64(W + 1);
  for (index_t oi = 0; oi < oh; ++oi) {
    float* d0 = dx + 2 * oi * W;
    const float* gr = g + oi * ow;
    const index_t* ar = a + oi * ow;
    for (index_t j = 0; j < ow; j += kWide) {
      const WideMasks m = wide_masks(ow - j);
      const __m512i first = _mm512_add_epi64(_mm512_set1_epi64(2 * oi * W + 2 * j), even);
      const __m512i first8 = _mm512_add_epi64(first, _mm512_set1_epi64(16));
      const __m512i rel0 = _mm512_sub_epi64(
          _mm512_maskz_loadu_epi64(static_cast<__mmask8>(m.win), ar + j), first);
      const __m512i rel1 = _mm512_sub_epi64(
          _mm512_maskz_loadu_epi64(static_cast<__mmask8>(m.win >> 8), ar + j + 8), first8);
      const __mmask16 inside = _mm512_kunpackb(_mm512_cmple_epu64_mask(rel1, last),
                                               _mm512_cmple_epu64_mask(rel0, last));
      const __m512 gv = _mm512_maskz_loadu_ps(m.win & inside, gr + j);
      const __m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(rel0)),
                                           _mm512_cvtepi64_epi32(rel1), 1);
      wide_store(d0 + 2 * j, d0 + W + 2 * j, gv, r, top, bot, m);
    }
  }
}

// The same for uint8 window codes (0, 1 on the top row, 2, 3 below; any other code leaves
// its window's four inputs at +0).
__attribute__((target("arch=x86-64-v4"))) inline void backward_plane_avx512(
    float* dx, const float* g, const std::uint8_t* a, index_t oh, index_t ow, index_t W) {
  const __m512i top = _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
  const __m512i bot = _mm512_add_epi32(top, _mm512_set1_epi32(2));
  for (index_t oi = 0; oi < oh; ++oi) {
    float* d0 = dx + 2 * oi * W;
    const float* gr = g + oi * ow;
    const std::uint8_t* ar = a + oi * ow;
    for (index_t j = 0; j < ow; j += kWide) {
      const WideMasks m = wide_masks(ow - j);
      const __m512i r = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m.win, ar + j));
      const __m512 gv = _mm512_maskz_loadu_ps(m.win, gr + j);
      wide_store(d0 + 2 * j, d0 + W + 2 * j, gv, r, top, bot, m);
    }
  }
}

}  // namespace fastconv::cpu::pool2x2
#endif  // FC_SIMD_CLONES_ENABLED
