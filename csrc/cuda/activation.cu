// relu and dropout on the GPU, float32: the twins of csrc/cpu/activation.cpp. One thread per
// element in grid-stride loops: every output has exactly one writer, so these are deterministic
// without further care.
#include "cuda/activation.h"

#include <cmath>
#include <cstdint>

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"
#include "fastconv/rng.h"

namespace fastconv::cuda {
namespace {

__global__ void relu_forward_kernel(float* y, const float* x, index_t count) {
  FC_GRID_LOOP(i, count) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;  // NaN < 0 is false: NaN passes, as on the CPU
  }
}

__global__ void relu_backward_kernel(float* dx, const float* dy, const float* y, index_t count) {
  FC_GRID_LOOP(i, count) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// The CPU's dropout_apply: element i kept iff bits24(key, i) >= threshold; kept elements are
// in * scale (or scale for the mask), dropped ones exactly +0 (a select: NaN and inf do not leak).
// With device_seed set, the key is formed here from the seed it points at, read when the kernel
// runs: a launch captured in a CUDA graph then draws a new mask at each replay once the host has
// written the next seed there, where a key passed by value would stay frozen at capture.
__global__ void dropout_kernel(float* out, const float* in, index_t count, std::uint64_t key,
                               const std::int64_t* device_seed, std::uint32_t threshold,
                               float scale) {
  if (device_seed) key = rng::stream_key(static_cast<std::uint64_t>(*device_seed));
  FC_GRID_LOOP(i, count) {
    const bool keep = rng::bits24(key, static_cast<std::uint64_t>(i)) >= threshold;
    const float v = in ? __fmul_rn(in[i], scale) : scale;
    out[i] = keep ? v : 0.0f;
  }
}

void dropout_apply(float* out, const float* in, index_t count, double ratio,
                   const DropoutSeed& seed) {
  if (count == 0) return;
  const std::uint64_t key = seed.on_device ? 0 : rng::stream_key(seed.value);
  const std::uint32_t threshold = rng::keep_threshold(ratio);
  const float scale = float(1.0 / (1.0 - ratio));  // in double, rounded once, as on the CPU
  dropout_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(out, in, count, key, seed.on_device,
                                                             threshold, scale);
  FC_LAUNCH_CHECK();
}

}  // namespace

void relu_forward(float* y, const float* x, index_t count) {
  if (count == 0) return;
  relu_forward_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, x, count);
  FC_LAUNCH_CHECK();
}

void relu_backward(float* dx, const float* dy, const float* y, index_t count) {
  if (count == 0) return;
  relu_backward_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(dx, dy, y, count);
  FC_LAUNCH_CHECK();
}

void dropout_forward(float* y, const float* x, index_t count, double ratio,
                     const DropoutSeed& seed) {
  dropout_apply(y, x, count, ratio, seed);
}

void dropout_backward(float* dx, const float* dy, index_t count, double ratio,
                      const DropoutSeed& seed) {
  dropout_apply(dx, dy, count, ratio, seed);
}

void dropout_mask(float* mask, index_t count, double ratio, std::uint64_t seed) {
  dropout_apply(mask, nullptr, count, ratio, DropoutSeed{seed, nullptr});
}

}  // namespace fastconv::cuda
