// The float32 softmax cross-entropy's row loops (cpu/loss.cpp runs them): a scan for the row's
// maximum, the sum of e^(z - max) through cpu/vexp.h's exp, and the gradient's last pass. Each
// is cloned per ISA (cpu/simd_clones.h), so the exp and the arithmetic around it round alike
// within one clone: the same bits for any thread count on one machine.
#pragma once
#include <cstring>

#include "cpu/simd_clones.h"
#include "cpu/vexp.h"
#include "fastconv/common.h"

namespace fastconv::cpu::vexp {

// A row's maximum, and whether every z - max is NaN or lies in the exp's shortcut range
// (min - max >= kNormalLo): then no lane of the row needs the exp's range test.
struct RowScan {
  float max;
  bool normal;
};

// max as the scan m = z[0]; m = z[j] > m ? z[j] : m gives it: every lane of two accumulators
// starts at z[0] and takes that scan over its share, then the lanes are merged the same way. A
// maximum is exact in any order; NaN never wins a comparison, so a NaN z[0] gives NaN and any
// other NaN is skipped, as in the scan. (Only the sign of a zero maximum met as both -0 and +0
// can depend on the order, and z - m and the loss do not see it.) The minimum is taken the same
// way. NaNs need no tracking: the shortcut keeps a NaN lane NaN. c >= 1.
FC_SIMD_CLONES inline RowScan scan_row(const float* z, index_t c) {
  const float z0 = z[0];
  F8 first;
  for (int k = 0; k < kLanes; ++k) first[k] = z0;  // not 0 + z0, which turns -0 into +0
  F8 hi[2] = {first, first}, lo[2] = {first, first};
  index_t j = 1;
  for (; j + 2 * kLanes <= c; j += 2 * kLanes)
    for (int a = 0; a < 2; ++a) {
      F8 v;
      std::memcpy(&v, z + j + a * kLanes, sizeof v);
      hi[a] = v > hi[a] ? v : hi[a];
      lo[a] = v < lo[a] ? v : lo[a];
    }
  const F8 h = hi[1] > hi[0] ? hi[1] : hi[0];
  const F8 l = lo[1] < lo[0] ? lo[1] : lo[0];
  float mx = h[0], mn = l[0];
  for (int k = 1; k < kLanes; ++k) {
    mx = h[k] > mx ? h[k] : mx;
    mn = l[k] < mn ? l[k] : mn;
  }
  for (; j < c; ++j) {
    mx = z[j] > mx ? z[j] : mx;
    mn = z[j] < mn ? z[j] : mn;
  }
  // z - mx is computed below as this same float subtraction, which is monotonic in z: every
  // non-NaN lane's value is >= mn - mx (and <= 0). An infinite max or min makes mn - mx -inf or
  // NaN, and a NaN z[0] makes both NaN: not normal.
  return {mx, mn - mx >= kNormalLo};
}

// sum_j e^(z[j] - m), each term also stored to e[j] when Store. Lane k sums the terms j = k mod 8
// in order of j, and the lanes are added pairwise in a fixed tree: the same bits for any thread
// count, and whether or not the row took the exp's shortcut (its bits are the general path's).
template <bool Store, Range R>
__attribute__((always_inline)) inline float exp_sum_in(float* e, const float* z, float m,
                                                       index_t c) {
  F8 acc = F8{};
  index_t j = 0;
  for (; j + kLanes <= c; j += kLanes) {
    F8 v;
    std::memcpy(&v, z + j, sizeof v);
    v -= m;
    exp8<R>(v);
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

// The row's scan decides: a row within the shortcut's range skips the exp's per-vector test.
template <bool Store>
FC_SIMD_CLONES float exp_sum(float* e, const float* z, const RowScan& scan, index_t c) {
  return scan.normal ? exp_sum_in<Store, Range::kNormal>(e, z, scan.max, c)
                     : exp_sum_in<Store, Range::kAny>(e, z, scan.max, c);
}

// The gradient of one row from its unnormalised softmax e (in d): d[j] = (d[j] * p - t[j]) *
// scale, with target weights t, or with a one-hot row at `label` when t is null. Cloned with
// the exp (the AVX2 and AVX-512 clones contract d * p - t to one FMA); the label form computes
// its one element with the same expression, so labels and their one-hot rows give the same bits.
FC_SIMD_CLONES inline void grad_row(float* d, const float* t, index_t label, float p, float scale,
                                    index_t c) {
  if (t) {
    for (index_t j = 0; j < c; ++j) d[j] = (d[j] * p - t[j]) * scale;
    return;
  }
  const float e = d[label];
  for (index_t j = 0; j < c; ++j) d[j] = (d[j] * p - 0.0f) * scale;
  d[label] = (e * p - 1.0f) * scale;
}

}  // namespace fastconv::cpu::vexp
