// Division by a divisor fixed before a kernel starts, for the index math of geometry.h. A GPU has
// no integer divider: a 64-bit `/` or `%` is a software routine of ~100 instructions, and the
// helper kernels did several per element, which made them compute-bound at a tenth of the memory
// bandwidth. FastDivU32 replaces one by a multiply-high, an add and a shift; PlainDiv is the
// hardware (or software) `/` in index_t, for the CPU and for sizes past 2**31. Index math written
// against the `Div` interface (geometry.h's *_by functions) runs with either, so the CPU tests
// exercise the same code the GPU runs. Each policy names its index type (Int): int32 with
// FastDivU32, which halves the instructions of every multiply and add in the index math too.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "fastconv/common.h"

namespace fastconv {

// FastDivU32 is exact for dividends below 2**31 and divisors up to 2**31.
constexpr index_t kFastDivLimit = index_t(1) << 31;

// n / d and n % d for 0 <= n < 2**31 and 1 <= d <= 2**31 (Granlund and Montgomery's round-up
// method): with l = ceil(log2 d) and m = floor(2**32 (2**l - d) / d) + 1 (which fits in 32 bits
// for these d), n / d = (mulhi(n, m) + n) >> l, and mulhi(n, m) + n cannot wrap as n < 2**31.
// Int is the index type of the code that divides by it: kernels taking this policy do their index
// math in 32 bits (index32_fits says when they may).
struct FastDivU32 {
  using Int = std::int32_t;
  std::uint32_t d = 1, m = 1, l = 0;

  FastDivU32() = default;
  // On the host, once per launch. The caller checks 1 <= divisor <= kFastDivLimit.
  explicit FastDivU32(index_t divisor) : d(static_cast<std::uint32_t>(divisor)) {
    while ((std::uint64_t(1) << l) < d) ++l;
    m = static_cast<std::uint32_t>(((std::uint64_t(1) << 32) * ((std::uint64_t(1) << l) - d)) / d +
                                   1);
  }

  FC_HD Int div(Int n) const {
    const auto u = static_cast<std::uint32_t>(n);
#if defined(__CUDA_ARCH__)
    const std::uint32_t hi = __umulhi(u, m);
#else
    const auto hi = static_cast<std::uint32_t>((std::uint64_t(u) * m) >> 32);
#endif
    return static_cast<Int>((hi + u) >> l);
  }
  // q = n / d and r = n % d; for 0 <= n < 2**31.
  FC_HD void divmod(Int n, Int* q, Int* r) const {
    *q = div(n);
    *r = n - *q * static_cast<Int>(d);
  }
};

// The plain division in index_t, for any n >= 0 and d >= 1: the CPU's, and the GPU's for sizes
// past index32_fits.
struct PlainDiv {
  using Int = index_t;
  index_t d = 1;

  PlainDiv() = default;
  explicit FC_HD PlainDiv(index_t divisor) : d(divisor) {}

  FC_HD Int div(Int n) const { return n / d; }
  FC_HD void divmod(Int n, Int* q, Int* r) const {
    *q = n / d;
    *r = n - *q * d;
  }
};

// Whether a kernel may take the 32-bit path (FastDivU32, int32 index math): every value given
// (the sizes it indexes, its dividends and divisors; all >= 0) is below 2**30, which leaves a
// grid-stride loop room to step past its end (by at most 2**24 threads) without wrapping.
constexpr index_t kIndex32Limit = index_t(1) << 30;

inline bool index32_fits(std::initializer_list<index_t> values) {
  for (const index_t v : values)
    if (v < 0 || v >= kIndex32Limit) return false;
  return true;
}

}  // namespace fastconv
