// relu and dropout on the GPU, float32: the twins of csrc/cpu/activation.h. They launch on
// stream() and return without synchronising.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// y = max(x, 0); NaN passes through.
void relu_forward(float* y, const float* x, index_t count);
// dx = dy where y > 0, else 0.
void relu_backward(float* dx, const float* dy, const float* y, index_t count);

// Inverted dropout with the CPU's counter-based mask (fastconv/rng.h): the same seed keeps the
// same elements on both backends. ratio in [0, 1).
// The seed is a value, or (on_device set) one int64 in device memory that the kernel reads when
// it runs, its bits taken as the uint64 seed: the mask then equals the one of that value, and a
// launch captured in a CUDA graph follows whatever the host writes there before each replay.
struct DropoutSeed {
  std::uint64_t value;
  const std::int64_t* on_device;  // null: use value
};
void dropout_forward(float* y, const float* x, index_t count, double ratio,
                     const DropoutSeed& seed);
void dropout_backward(float* dx, const float* dy, index_t count, double ratio,
                      const DropoutSeed& seed);
void dropout_mask(float* mask, index_t count, double ratio, std::uint64_t seed);

}  // namespace fastconv::cuda
