// Selecting a value or +0 by bits, without a branch: the conditions here (ReLU masks, dropout's
// coin flips) are half true in no pattern, which a branch mispredicts every other element
// (measured: 3x slower). Masking the bits, not multiplying by 0, so a dropped NaN or inf still
// becomes exactly +0.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastconv::cpu {

// keep ? v : +0.
template <typename T>
inline T keep_or_zero(bool keep, T v) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Bits b;
  std::memcpy(&b, &v, sizeof b);
  b &= Bits(0) - Bits(keep);
  std::memcpy(&v, &b, sizeof b);
  return v;
}

// v where y > 0, else +0: the ReLU's gradient mask.
template <typename T>
inline T keep_if_positive(T y, T v) {
  return keep_or_zero(y > T(0), v);
}

}  // namespace fastconv::cpu
