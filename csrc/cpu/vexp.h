// A vectorisable float exp for the softmax loops: std::exp stays scalar (a libm call) without
// -ffast-math, which would break the NaN/inf semantics. Range reduction x = n ln2 + r with
// |r| <= ln2/2 (ln2 split in two, the high part exact in 9 bits, so n * ln2_hi is exact), a
// degree-7 polynomial for e^r (Cephes' expf coefficients), then 2^n applied in two exact halves so
// that results in the subnormal range round once and overflow gives inf.
//
// Accuracy (measured over all 2^32 inputs; tests/test_vexp.py checks a sweep and the edges):
// within 1 ulp of the exact e^x where the correctly rounded result is normal (0.990 at most),
// within 2^-149 where it is subnormal (0.75 * 2^-149 at most); exactly 1 at 0, +inf exactly
// where the correctly rounded result is inf, +0 at -inf, NaN for NaN. (Measured for the x86-64-v4
// clone, whose FMAs round the polynomial once per step: 0.9903 ulp; 0.990 without FMA. The
// clones' bits differ, see cpu/simd_clones.h.)
#pragma once
#include <cstdint>
#include <cstring>

#include "cpu/simd_clones.h"
#include "fastconv/common.h"

namespace fastconv::cpu::vexp {

// Eight lanes in GCC's generic vectors: the generic x86-64 clone runs them as two SSE2 halves,
// the AVX2 and AVX-512 clones as one register (64-byte generic vectors measured 4x slower). Vector comparisons select without branches (a scalar ?: on
// floats stays a branch under -ftrapping-math, and the loop would not vectorise).
using F8 = float __attribute__((vector_size(32)));
using I8 = std::int32_t __attribute__((vector_size(32)));
using U8 = std::uint32_t __attribute__((vector_size(32)));
constexpr int kLanes = 8;

// Every lane of a mask set (lanes are 0 or -1).
__attribute__((always_inline)) inline bool all_set(const I8& mask) {
  std::uint64_t q[4];
  std::memcpy(q, &mask, sizeof q);
  return ((q[0] & q[1]) & (q[2] & q[3])) == ~std::uint64_t(0);
}

// Range::kNormal: the caller knows every lane is NaN or lies in [kNormalLo, kNormalHi].
enum class Range { kAny, kNormal };
constexpr float kNormalLo = -86.0f, kNormalHi = 88.0f;

// x = e^x in each lane, in place: a 32-byte vector passed or returned by value would change the
// ABI between the clones (GCC warns), a reference does not.
template <Range R = Range::kAny>
__attribute__((always_inline)) inline void exp8(F8& x) {
  // Where every lane lies in [-86, 88] (the softmax's z - max mostly does), n is within
  // [-124, 127] and p * 2^n is a normal float: one multiply by 2^n, built from its exponent
  // field, is that product exactly, the same bits as the two exact halves below, without the
  // clamps. A NaN lane stays NaN through p (whatever its n); the test here sends it the general
  // way anyway.
  const bool normal = R == Range::kNormal || all_set((x >= kNormalLo) & (x <= kNormalHi));
  if (!normal) {
    const F8 lo = F8{} - 104.0f, hi = F8{} + 89.0f;
    // Past these e^x is inf or rounds to +0 anyway; the clamp keeps n within [-150, 128]. A NaN
    // fails both comparisons and propagates through the arithmetic below.
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
  }
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
  if (normal) {
    x = p * __builtin_bit_cast(F8, (ni + 127u) << 23);
    return;
  }
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

// y[i] = e^x[i] for i < n, through the clone the loss runs (tests/test_vexp.py's probe).
FC_SIMD_CLONES inline void exp_array(float* y, const float* x, index_t n) {
  for (index_t i = 0; i < n; i += kLanes) exp_tail(y + i, x + i, n - i < kLanes ? n - i : kLanes);
}

}  // namespace fastconv::cpu::vexp
