// Adam's bias correction 1 - beta**step, formed in double and rounded once to float32: the one
// definition that the GPU update (csrc/cuda/optim.cu) and ops.adam_bias_corrections (the values a
// CUDA-graph replay reads from device memory) share, so the two agree bit for bit. The CPU's
// float32 update (csrc/cpu/optim.cpp) forms the same expression.
#pragma once
#include <cmath>

#include "fastconv/common.h"

namespace fastconv {

inline float bias_correction_f32(double beta, index_t step) {
  return float(1.0 - std::pow(beta, double(step)));
}

}  // namespace fastconv
