// Selecting a value or +0 by bits, without a branch: the conditions here (ReLU masks, dropout's
// coin flips) are half true in no pattern, which a branch mispredicts every other element
// (measured: 3x slower). Masking the bits, not multiplying by 0, so a dropped NaN or inf still
// becomes exactly +0.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastconv::cpu {

// m ? a : b through the bit patterns, for 4- and 8-byte values (floats and integers): a blend
// in vector loops, no branch in scalar code, and the winner's bits copied unchanged (NaN
// payloads, signed zeros).
template <typename T>
__attribute__((always_inline)) inline T select_bits(bool m, T a, T b) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "select_bits takes 4- or 8-byte values");
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Bits x, y;
  std::memcpy(&x, &a, sizeof(T));
  std::memcpy(&y, &b, sizeof(T));
  y ^= (x ^ y) & (Bits(0) - Bits(m));
  std::memcpy(&b, &y, sizeof(T));
  return b;
}

// keep ? v : +0.
template <typename T>
__attribute__((always_inline)) inline T keep_or_zero(bool keep, T v) {
  return select_bits(keep, v, T(0));
}

// v where y > 0, else +0: the ReLU's gradient mask.
template <typename T>
__attribute__((always_inline)) inline T keep_if_positive(T y, T v) {
  return keep_or_zero(y > T(0), v);
}

}  // namespace fastconv::cpu
