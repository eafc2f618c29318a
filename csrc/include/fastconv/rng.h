// Counter-based random numbers: every draw is a pure function of (seed, element index), so a mask
// needs no state, no per-thread streams and no storage. Thread count, iteration order and backend
// cannot change it, and backward recomputes exactly the mask forward used.
//
// Design. The mixing function is the splitmix64 finaliser (variant 13 of Stafford's search, the
// output stage of Java's SplittableRandom): an invertible xor-shift / odd-multiply chain in which
// every input bit flips each output bit with probability ~1/2. One call per draw is
//   h(seed, i) = mix64( mix64(key + i * GOLDEN) ^ key ),   key = mix64(seed ^ SEED_SALT)
// * The inner mix64(key + i * GOLDEN) is splitmix64 itself started at `key`: GOLDEN is odd, so
//   distinct counters give distinct states (no collisions within a stream of up to 2^64 draws).
// * Hashing the seed into `key` makes neighbouring seeds (0, 1, 2, ...) start at unrelated points.
//   Two seeds' state sequences are still shifts of one Weyl sequence, so they could overlap for a
//   very long stream; xoring the key back in and mixing a second time makes overlapping states
//   give unrelated outputs, at the price of a second mix (four 64-bit multiplies per draw).
// Only unsigned 64-bit add, xor, shift and multiply: identical on g++ and nvcc, wrap-around
// included, and easy to replicate in numpy uint64 arithmetic (fastconv/reference/activation.py).
#pragma once
#include <cmath>
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::rng {

constexpr std::uint64_t GOLDEN = 0x9E3779B97F4A7C15ull;     // 2^64 / golden ratio, odd
constexpr std::uint64_t SEED_SALT = 0xD1B54A32D192ED03ull;  // keeps seed 0 away from key 0
constexpr int UNIFORM_BITS = 24;  // a float's mantissa: the uniform is exact in float and double

FC_HD std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Computed once per call, outside the element loop.
FC_HD std::uint64_t stream_key(std::uint64_t seed) { return mix64(seed ^ SEED_SALT); }

FC_HD std::uint64_t hash(std::uint64_t key, std::uint64_t i) {
  return mix64(mix64(key + i * GOLDEN) ^ key);
}

// The top 24 bits of the hash as an integer in [0, 2^24); uniform = bits24 / 2^24 in [0, 1).
FC_HD std::uint32_t bits24(std::uint64_t key, std::uint64_t i) {
  return static_cast<std::uint32_t>(hash(key, i) >> (64 - UNIFORM_BITS));
}

// uniform >= ratio  <=>  bits24 >= ratio * 2^24  <=>  bits24 >= ceil(ratio * 2^24), because bits24
// is an integer and ratio * 2^24 is exact in double. Comparing integers means float and double
// kernels, CPU and GPU, keep exactly the same elements. ratio in [0, 1) -> threshold in [0, 2^24].
FC_HD std::uint32_t keep_threshold(double ratio) {
  return static_cast<std::uint32_t>(ceil(ratio * double(1u << UNIFORM_BITS)));
}

}  // namespace fastconv::rng
