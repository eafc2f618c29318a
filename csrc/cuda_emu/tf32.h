// TF32 rounding, shared by the emulated cuBLAS and cuBLASLt (not seen by fastconv's sources).
#pragma once
#include <cstdint>
#include <cstring>

namespace fc_emu {

// TF32 keeps 10 of float's 23 mantissa bits; the conversion rounds to nearest, ties away from 0.
inline float to_tf32(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & ~0x1fffu;  // not inf/NaN
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace fc_emu
