#include "cpu/activation.h"

#include <cstdint>

#include "cpu/bit_select.h"
#include "cpu/simd_clones.h"
#include "cpu/threads.h"
#include "fastconv/geometry.h"
#include "fastconv/rng.h"

namespace fastconv::cpu {

template <typename T>
void relu_forward(T* y, const T* x, index_t count) {
#pragma omp parallel for simd schedule(static) num_threads(team(count)) if (count > (1 << 16))
  for (index_t i = 0; i < count; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}

template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, index_t count) {
#pragma omp parallel for simd schedule(static) num_threads(team(count)) if (count > (1 << 16))
  // dy is loaded whether or not it is used: a load under the condition (or a comparison GCC
  // must assume can trap) is control flow, and the loop stayed scalar.
  for (index_t i = 0; i < count; ++i) {
    const T g = dy[i], v = y[i];
    dx[i] = v > T(0) ? g : T(0);
  }
}

// Elements [begin, end) of dropout_apply, cloned per ISA: the hash is four 64-bit multiplies per
// element, which only AVX-512 (vpmullq) does in vector lanes; the generic build runs them one at
// a time (measured 2.6 ns per element). Integer hashing and one multiply by scale: every clone
// gives the same bits.
template <typename T>
FC_SIMD_CLONES void dropout_span(T* out, const T* in, index_t begin, index_t end,
                                 std::uint64_t key, std::uint32_t threshold, T scale) {
  for (index_t i = begin; i < end; ++i) {
    const bool keep = rng::bits24(key, static_cast<std::uint64_t>(i)) >= threshold;
    const T v = in ? in[i] * scale : scale;
    out[i] = keep_or_zero(keep, v);
  }
}

namespace {

// Elements per parallel chunk: many per cloned call, and enough chunks to share out.
constexpr index_t kDropoutChunk = 4096;

// out[i] = in[i] * scale where element i is kept, else 0. Forward, backward and the mask are this
// one loop (the mask with in == nullptr), so they cannot disagree about which elements survive.
template <typename T>
void dropout_apply(T* out, const T* in, index_t count, double ratio, std::uint64_t seed) {
  const std::uint64_t key = rng::stream_key(seed);
  const std::uint32_t threshold = rng::keep_threshold(ratio);
  const T scale = T(1.0 / (1.0 - ratio));  // in double, then rounded once
  const index_t chunks = ceil_div(count, kDropoutChunk);
  // The hash is ~10 integer ops per element against one load and one store, so it pays to
  // parallelise from fairly small sizes.
#pragma omp parallel for schedule(static) num_threads(team(chunks)) if (count > (1 << 14))
  for (index_t k = 0; k < chunks; ++k) {
    const index_t begin = k * kDropoutChunk;
    dropout_span(out, in, begin, count - begin < kDropoutChunk ? count : begin + kDropoutChunk,
                 key, threshold, scale);
  }
}

}  // namespace

template <typename T>
void dropout_forward(T* y, const T* x, index_t count, double ratio, std::uint64_t seed) {
  dropout_apply(y, x, count, ratio, seed);
}

template <typename T>
void dropout_backward(T* dx, const T* dy, index_t count, double ratio, std::uint64_t seed) {
  dropout_apply(dx, dy, count, ratio, seed);
}

template <typename T>
void dropout_mask(T* mask, index_t count, double ratio, std::uint64_t seed) {
  dropout_apply(mask, static_cast<const T*>(nullptr), count, ratio, seed);
}

template void relu_forward<float>(float*, const float*, index_t);
template void relu_forward<double>(double*, const double*, index_t);
template void relu_backward<float>(float*, const float*, const float*, index_t);
template void relu_backward<double>(double*, const double*, const double*, index_t);
template void dropout_forward<float>(float*, const float*, index_t, double, std::uint64_t);
template void dropout_forward<double>(double*, const double*, index_t, double, std::uint64_t);
template void dropout_backward<float>(float*, const float*, index_t, double, std::uint64_t);
template void dropout_backward<double>(double*, const double*, index_t, double, std::uint64_t);
template void dropout_mask<float>(float*, index_t, double, std::uint64_t);
template void dropout_mask<double>(double*, index_t, double, std::uint64_t);

}  // namespace fastconv::cpu
