// A vectorisable float exp for the softmax loops: std::exp stays scalar (a libm call) without
// -ffast-math, which would break the NaN/inf semantics. Range reduction x = n ln2 + r with
// |r| <= ln2/2 (ln2 split in two, the high part exact in 9 bits, so n * ln2_hi is exact), a
// degree-7 polynomial for e^r (Cephes' expf coefficients), then 2^n applied in two exact halves so
// that results in the subnormal range round once and overflow gives inf.
//
// Accuracy (measured over all 2^32 inputs; tests/test_vexp.py checks a sweep and the edges):
// within 1 ulp of the exact e^x where the correctly rounded result is normal (0.990 at most),
// within 2^-149 where it is subnormal (0.75 * 2^-149 at most); exactly 1 at 0, +inf exactly
// where the correctly rounded result is inf, +0 at -inf, NaN for NaN. No FMA (the AVX2 clone is
// built without it), so every CPU gets the same bits.
#pragma once
#include <cstdint>
#include <cstring>

#include "cpu/simd_clones.h"
#include "fastconv/common.h"

namespace fastconv::cpu::vexp {

// Eight lanes in GCC's generic vectors: the generic x86-64 clone runs them as two SSE2 halves,
// the AVX2 clone as one register. Vector comparisons select without branches (a scalar ?: on
// floats stays a branch under -ftrapping-math, and the loop would not vectorise).
using F8 = float __attribute__((vector_size(32)));
using I8 = std::int32_t __attribute__((vector_size(32)));
using U8 = std::uint32_t __attribute__((vector_size(32)));
constexpr int kLanes = 8;

// x = e^x in each lane, in place: a 32-byte vector passed or returned by value would change the
// ABI between the clones (GCC warns), a reference does not.
__attribute__((always_inline)) inline void exp8(F8& x) {
  const F8 lo = F8{} - 104.0f, hi = F8{} + 89.0f;
  // Past these e^x is inf or rounds to +0 anyway; the clamp keeps n within [-150, 128]. A NaN
  // fails both comparisons and propagates through the arithmetic below.
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  // n = round(x / ln2) by the 1.5 * 2^23 trick: the sum's low mantissa bits are n.
  const F8 magic = F8{} + 12582912.0f;
  const F8 t = x * 1.44269504088896341f + magic;
  const F8 n = t - magic;
  const U8 ni = __builtin_bit_cast(U8, t) - __builtin_bit_cast(U8, magic);  // n mod 2^32
  const F8 r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  F8 p = F8{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^n = 2^h * 2^(n - h) with h = n / 2 rounded down, both halves in [-75, 64] and built from
  // their exponent fields: the first product is exact, the second rounds once (into the
  // subnormals, or up to inf).
  const U8 h = __builtin_bit_cast(U8, __builtin_bit_cast(I8, ni) >> 1);
  const U8 e1 = (h + 127u) << 23, e2 = (ni - h + 127u) << 23;
  x = (p * __builtin_bit_cast(F8, e1)) * __builtin_bit_cast(F8, e2);
}

// y[i] = e^x[i] for i < n <= 8, through the same lanes (the rest padded with zeros).
inline void exp_tail(float* y, const float* x, index_t n) {
  F8 v = F8{};
  for (index_t i = 0; i < n; ++i) v[i] = x[i];
  exp8(v);
  for (index_t i = 0; i < n; ++i) y[i] = v[i];
}

// sum_j e^(z[j] - m), each term also stored to e[j] when Store. Lane k sums the terms j = k mod 8
// in order of j, and the lanes are added pairwise in a fixed tree: the same bits on every CPU,
// clone and thread count.
template <bool Store>
FC_SIMD_CLONES float exp_sum(float* e, const float* z, float m, index_t c) {
  F8 acc = F8{};
  index_t j = 0;
  for (; j + kLanes <= c; j += kLanes) {
    F8 v;
    std::memcpy(&v, z + j, sizeof v);
    v -= m;
    exp8(v);
    if constexpr (Store) std::memcpy(e + j, &v, sizeof v);
    acc += v;
  }
  if (j < c) {  // the last c mod 8 terms, through the same lanes, the rest added as +0
    F8 v = F8{};
    for (index_t k = 0; j + k < c; ++k) v[k] = z[j + k] - m;
    exp8(v);
    for (index_t k = c - j; k < kLanes; ++k) v[k] = 0.0f;
    if constexpr (Store)
      for (index_t k = 0; j + k < c; ++k) e[j + k] = v[k];
    acc += v;
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// max_j z[j] for c >= 1, as the scan m = z[0]; m = z[j] > m ? z[j] : m gives it: every lane of
// four accumulators starts at z[0] and takes that scan over its share, then the lanes are merged
// the same way. A maximum is exact in any order; NaN never wins a comparison, so a NaN z[0]
// gives NaN and any other NaN is skipped, as in the scan. (Only the sign of a zero maximum met
// as both -0 and +0 can depend on the order, and z - m and the loss do not see it.)
FC_SIMD_CLONES inline float max_row(const float* z, index_t c) {
  const float z0 = z[0];
  const F8 first = {z0, z0, z0, z0, z0, z0, z0, z0};  // not 0 + z0, which turns -0 into +0
  F8 acc[4] = {first, first, first, first};
  index_t j = 1;
  for (; j + 4 * kLanes <= c; j += 4 * kLanes)
    for (int a = 0; a < 4; ++a) {
      F8 v;
      std::memcpy(&v, z + j + a * kLanes, sizeof v);
      acc[a] = v > acc[a] ? v : acc[a];
    }
  F8 m = acc[0];
  for (int a = 1; a < 4; ++a) m = acc[a] > m ? acc[a] : m;
  float r = m[0];
  for (int k = 1; k < kLanes; ++k) r = m[k] > r ? m[k] : r;
  for (; j < c; ++j) r = z[j] > r ? z[j] : r;
  return r;
}

}  // namespace fastconv::cpu::vexp
