// Checked integer arithmetic for sizes: each helper stores the exact result in *out and returns
// true, or returns false when the result does not fit the type. Signed overflow is undefined
// behaviour, so a size computed from user input must go through these before it is trusted.
//
// Host code uses the compiler's __builtin_*_overflow. nvcc does not accept those in device code
// (they are host functions to it), so there the same checks are spelled out by comparison with
// the type's limits, which cannot overflow themselves.
#pragma once
#include <type_traits>

#include "fastconv/common.h"

namespace fastconv {
namespace checked_detail {

template <typename T>
FC_HD constexpr T max_of() {
  return std::is_signed<T>::value ? T(std::make_unsigned_t<T>(~std::make_unsigned_t<T>(0)) >> 1)
                                  : T(~T(0));
}

template <typename T>
FC_HD constexpr T min_of() {
  return std::is_signed<T>::value ? T(-max_of<T>() - 1) : T(0);
}

// The portable forms, for device code (and compiled on the host by nothing else).
template <typename T>
FC_HD bool add(T a, T b, T* out) {
  if (b > 0 ? a > max_of<T>() - b : a < min_of<T>() - b) return false;
  *out = T(a + b);
  return true;
}

template <typename T>
FC_HD bool sub(T a, T b, T* out) {
  if (b < 0 ? a > max_of<T>() + b : a < min_of<T>() + b) return false;
  *out = T(a - b);
  return true;
}

template <typename T>
FC_HD bool mul(T a, T b, T* out) {
  if (a == 0 || b == 0) {
    *out = 0;
    return true;
  }
  const T hi = max_of<T>(), lo = min_of<T>();
  // Integer division truncates toward zero, so each bound below is the exact limit.
  const bool fits = a > 0 ? (b > 0 ? a <= hi / b : b >= lo / a)
                          : (b > 0 ? a >= lo / b : b >= hi / a);
  if (!fits) return false;
  *out = T(a * b);
  return true;
}

}  // namespace checked_detail

template <typename T>
FC_HD bool try_add(T a, T b, T* out) {
#if defined(__CUDA_ARCH__)
  return checked_detail::add(a, b, out);
#else
  return !__builtin_add_overflow(a, b, out);
#endif
}

template <typename T>
FC_HD bool try_sub(T a, T b, T* out) {
#if defined(__CUDA_ARCH__)
  return checked_detail::sub(a, b, out);
#else
  return !__builtin_sub_overflow(a, b, out);
#endif
}

template <typename T>
FC_HD bool try_mul(T a, T b, T* out) {
#if defined(__CUDA_ARCH__)
  return checked_detail::mul(a, b, out);
#else
  return !__builtin_mul_overflow(a, b, out);
#endif
}

// The product of n factors, or false if it does not fit. A zero factor makes the product 0 even
// when the others alone would overflow: a shape with an empty axis holds no elements.
template <typename T>
FC_HD bool try_product(const T* factors, int n, T* out) {
  for (int i = 0; i < n; ++i) {
    if (factors[i] == 0) {
      *out = 0;
      return true;
    }
  }
  T acc = 1;
  for (int i = 0; i < n; ++i)
    if (!try_mul(acc, factors[i], &acc)) return false;
  *out = acc;
  return true;
}

}  // namespace fastconv
