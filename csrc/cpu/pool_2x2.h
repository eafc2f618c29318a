// Max pooling's whole 2x2 stride-2 windows in float, four output columns at a time: the two
// input rows are split into their even and odd columns (deinterleaved loads), so each of a
// window's four taps is one lane of a vector and the four windows' chains run side by side.
// Internal to cpu/pool_max.cpp. A plane is one cloned call (a call through the ISA dispatch per row
// cost about as much as the row); a row whose width is not a multiple of 4 ends with a step over
// its last four windows, overlapping the one before: those windows are computed again and
// written with the same values, so no scalar tail is needed. Rows need at least 4 windows.
// Indices come in two forms (cpu/pool.h): int64 flat indices, or uint8 window codes (the
// winner's position in its window: 0 and 1 on the top row, 2 and 3 below).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "fastconv/common.h"

#if defined(__SSE2__)
#include <emmintrin.h>

#include "cpu/simd_clones.h"

namespace fastconv::cpu::pool2x2 {

constexpr index_t kWindows = 4;  // windows per vector step

// poolrows::wins(v, best) of pool_rows.h, four lanes at once: !(v <= best) and best is not NaN.
// cmpnle is true for unordered pairs, so a NaN v beats a number and a NaN best keeps its place.
inline __m128 wins(__m128 v, __m128 best) {
  return _mm_and_ps(_mm_cmpnle_ps(v, best), _mm_cmpord_ps(best, best));
}

// m ? a : b by bits, so the winner's bits are copied unchanged (NaN payloads, signed zeros).
inline __m128 pick(__m128 m, __m128 a, __m128 b) {
  return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
}

// A 0 / -1 int32 mask in lanes 0-1 (lo) or 2-3 (hi), sign-extended to int64.
inline __m128i wide_lo(__m128i m) { return _mm_unpacklo_epi32(m, m); }
inline __m128i wide_hi(__m128i m) { return _mm_unpackhi_epi32(m, m); }

// Windows j to j + 3 of an output row: y[j] and its index a[j] (I: index_t or std::uint8_t)
// from the input rows r0 and r1 = r0 + W, r0 starting at flat index base of the plane. Taps in
// raster order: r0[2j], r0[2j + 1], r1[2j], r1[2j + 1], each replacing the best so far only
// where it wins.
template <typename I>
__attribute__((always_inline)) inline void forward_step(float* y, I* a, const float* r0,
                                                        const float* r1, index_t j, index_t base,
                                                        index_t W) {
  const __m128 p0 = _mm_loadu_ps(r0 + 2 * j), p1 = _mm_loadu_ps(r0 + 2 * j + 4);
  const __m128 q0 = _mm_loadu_ps(r1 + 2 * j), q1 = _mm_loadu_ps(r1 + 2 * j + 4);
  __m128 best = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0));
  const __m128 b = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1));
  const __m128 c = _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));
  const __m128 d = _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
  // The winner's column (right) and row (down) within its window, as lane masks.
  __m128 t = wins(b, best);
  best = pick(t, b, best);
  __m128i right = _mm_castps_si128(t);
  t = wins(c, best);
  best = pick(t, c, best);
  right = _mm_andnot_si128(_mm_castps_si128(t), right);
  __m128i down = _mm_castps_si128(t);
  t = wins(d, best);
  best = pick(t, d, best);
  right = _mm_or_si128(right, _mm_castps_si128(t));
  down = _mm_or_si128(down, _mm_castps_si128(t));
  _mm_storeu_ps(y + j, best);
  if constexpr (std::is_same_v<I, std::uint8_t>) {
    // code = (right ? 1 : 0) + (down ? 2 : 0), narrowed to four bytes.
    const __m128i code = _mm_or_si128(_mm_and_si128(right, _mm_set1_epi32(1)),
                                      _mm_and_si128(down, _mm_set1_epi32(2)));
    const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(code, code), code);
    const int four = _mm_cvtsi128_si32(bytes);
    std::memcpy(a + j, &four, 4);
  } else {
    // index = first tap + (right ? 1 : 0) + (down ? W : 0); a -1 mask subtracted adds 1.
    const __m128i w = _mm_set1_epi64x(W), next = _mm_set1_epi64x(kWindows);
    const __m128i col = _mm_set_epi64x(base + 2 * j + 2, base + 2 * j);  // windows j, j + 1
    const __m128i lo = _mm_add_epi64(_mm_sub_epi64(col, wide_lo(right)),
                                     _mm_and_si128(wide_lo(down), w));
    const __m128i col_hi = _mm_add_epi64(col, next);
    const __m128i hi = _mm_add_epi64(_mm_sub_epi64(col_hi, wide_hi(right)),
                                     _mm_and_si128(wide_hi(down), w));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a + j), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a + j + 2), hi);
  }
}

// Every window of an (oh, ow) output plane from its (h, W) input plane x, ow >= 4.
template <typename I>
__attribute__((always_inline)) inline void forward_rows(float* y, I* a, const float* x,
                                                        index_t oh, index_t ow, index_t W) {
  for (index_t oi = 0; oi < oh; ++oi) {
    const float* r0 = x + 2 * oi * W;
    float* yr = y + oi * ow;
    I* ar = a + oi * ow;
    index_t j = 0;
    for (; j + kWindows <= ow; j += kWindows) forward_step(yr, ar, r0, r0 + W, j, 2 * oi * W, W);
    if (j < ow) forward_step(yr, ar, r0, r0 + W, ow - kWindows, 2 * oi * W, W);
  }
}

FC_SIMD_CLONES
inline void forward_plane_flat(float* y, index_t* a, const float* x, index_t oh, index_t ow,
                               index_t W) {
  forward_rows(y, a, x, oh, ow, W);
}

FC_SIMD_CLONES
inline void forward_plane_codes(float* y, std::uint8_t* a, const float* x, index_t oh,
                                index_t ow, index_t W) {
  forward_rows(y, a, x, oh, ow, W);
}

inline void forward_plane(float* y, index_t* a, const float* x, index_t oh, index_t ow,
                          index_t W) {
  forward_plane_flat(y, a, x, oh, ow, W);
}
inline void forward_plane(float* y, std::uint8_t* a, const float* x, index_t oh, index_t ow,
                          index_t W) {
  forward_plane_codes(y, a, x, oh, ow, W);
}

// The backward of forward_step over the same windows: input rows d0 and d1 = d0 + W get each
// window's gradient g[j] at its argmax a[j] (relative to the window: 0, 1, W or W + 1) and +0 at
// its other three inputs; an index naming none of the four leaves all four at +0. The relative
// index is compared in 32 bits, its high half checked for zero: exact for W + 1 < 2^31, which
// the caller ensures.
__attribute__((always_inline)) inline void backward_step(float* d0, float* d1, const float* g,
                                                         const index_t* a, index_t j,
                                                         index_t base, index_t W) {
  const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi32(1);
  const __m128i w = _mm_set1_epi32(static_cast<int>(W));
  const __m128i w1 = _mm_set1_epi32(static_cast<int>(W + 1));
  const __m128i next = _mm_set1_epi64x(kWindows);
  const __m128i col = _mm_set_epi64x(base + 2 * j + 2, base + 2 * j);
  {
    const __m128 at_lo = _mm_castsi128_ps(
        _mm_sub_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j)), col));
    const __m128 at_hi = _mm_castsi128_ps(_mm_sub_epi64(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j + 2)), _mm_add_epi64(col, next)));
    // The four windows' low and high 32-bit halves (little endian: low first).
    const __m128i low = _mm_castps_si128(_mm_shuffle_ps(at_lo, at_hi, _MM_SHUFFLE(2, 0, 2, 0)));
    const __m128i high = _mm_castps_si128(_mm_shuffle_ps(at_lo, at_hi, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m128 gv =
        _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(high, zero)), _mm_loadu_ps(g + j));
    const __m128 e0 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(low, zero)), gv);
    const __m128 e1 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(low, one)), gv);
    const __m128 e2 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(low, w)), gv);
    const __m128 e3 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(low, w1)), gv);
    _mm_storeu_ps(d0 + 2 * j, _mm_unpacklo_ps(e0, e1));
    _mm_storeu_ps(d0 + 2 * j + 4, _mm_unpackhi_ps(e0, e1));
    _mm_storeu_ps(d1 + 2 * j, _mm_unpacklo_ps(e2, e3));
    _mm_storeu_ps(d1 + 2 * j + 4, _mm_unpackhi_ps(e2, e3));
  }
}

// The backward of forward_plane: the (2 oh, W) top rows of dx's plane from dy's (oh, ow) plane g
// and its indices a, ow >= 4. (An odd last row or column of dx is the caller's.)
FC_SIMD_CLONES
inline void backward_plane_flat(float* dx, const float* g, const index_t* a, index_t oh,
                                index_t ow, index_t W) {
  for (index_t oi = 0; oi < oh; ++oi) {
    float* d0 = dx + 2 * oi * W;
    const float* gr = g + oi * ow;
    const index_t* ar = a + oi * ow;
    index_t j = 0;
    for (; j + kWindows <= ow; j += kWindows) backward_step(d0, d0 + W, gr, ar, j, 2 * oi * W, W);
    if (j < ow) backward_step(d0, d0 + W, gr, ar, ow - kWindows, 2 * oi * W, W);
  }
}

// backward_step for window codes: code 0-3 puts the gradient at that input, any other code
// leaves all four at +0.
__attribute__((always_inline)) inline void backward_step_codes(float* d0, float* d1,
                                                               const float* g,
                                                               const std::uint8_t* a, index_t j) {
  int four;
  std::memcpy(&four, a + j, 4);
  const __m128i zero = _mm_setzero_si128();
  const __m128i code = _mm_unpacklo_epi16(
      _mm_unpacklo_epi8(_mm_cvtsi32_si128(four), zero), zero);  // four int32
  const __m128 gv = _mm_loadu_ps(g + j);
  const __m128 e0 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(code, zero)), gv);
  const __m128 e1 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(code, _mm_set1_epi32(1))), gv);
  const __m128 e2 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(code, _mm_set1_epi32(2))), gv);
  const __m128 e3 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(code, _mm_set1_epi32(3))), gv);
  _mm_storeu_ps(d0 + 2 * j, _mm_unpacklo_ps(e0, e1));
  _mm_storeu_ps(d0 + 2 * j + 4, _mm_unpackhi_ps(e0, e1));
  _mm_storeu_ps(d1 + 2 * j, _mm_unpacklo_ps(e2, e3));
  _mm_storeu_ps(d1 + 2 * j + 4, _mm_unpackhi_ps(e2, e3));
}

FC_SIMD_CLONES
inline void backward_plane_codes(float* dx, const float* g, const std::uint8_t* a, index_t oh,
                                 index_t ow, index_t W) {
  for (index_t oi = 0; oi < oh; ++oi) {
    float* d0 = dx + 2 * oi * W;
    const float* gr = g + oi * ow;
    const std::uint8_t* ar = a + oi * ow;
    index_t j = 0;
    for (; j + kWindows <= ow; j += kWindows) backward_step_codes(d0, d0 + W, gr, ar, j);
    if (j < ow) backward_step_codes(d0, d0 + W, gr, ar, ow - kWindows);
  }
}

inline void backward_plane(float* dx, const float* g, const index_t* a, index_t oh, index_t ow,
                           index_t W) {
  backward_plane_flat(dx, g, a, oh, ow, W);
}
inline void backward_plane(float* dx, const float* g, const std::uint8_t* a, index_t oh,
                           index_t ow, index_t W) {
  backward_plane_codes(dx, g, a, oh, ow, W);
}

}  // namespace fastconv::cpu::pool2x2
#endif  // __SSE2__
