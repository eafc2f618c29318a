// SGD and Adam on the GPU, float32: the twins of csrc/cpu/optim.h, launched on stream().
#pragma once
#include <cstddef>

#include "fastconv/common.h"

namespace fastconv::cuda {

// The CPU's update formulas (csrc/cpu/optim.h), operation for operation, with every multiply
// and add rounded separately (no fused multiply-add), so the GPU update equals the CPU's bits.
void sgd_update(float* param, float* velocity, const float* grad, index_t count, double lr,
                double momentum, bool nesterov, double weight_decay);
void adam_update(float* param, float* m, float* v, const float* grad, index_t count, double lr,
                 double beta1, double beta2, double eps, double weight_decay, index_t step);

// Many parameters with one kernel launch per kMultiTensors of them, each updated bit for bit as
// the single-tensor call would. The tensor table travels by value as a kernel argument (no
// host-to-device copy), so a launch can be captured in a CUDA graph. Arrays of different tensors
// must not overlap (the binding checks); velocity may be null when momentum == 0.
constexpr int kMultiTensors = 32;

struct SgdTensor {
  float* param;
  float* velocity;
  const float* grad;
  index_t count;
  double weight_decay;
};
void sgd_update_multi(const SgdTensor* tensors, std::size_t n, double lr, double momentum,
                      bool nesterov);

struct AdamTensor {
  float* param;
  float* m;
  float* v;
  const float* grad;
  index_t count;
  double weight_decay;
  index_t step;
};
// corrections: null, or n rows (c1, c2) = (1 - beta1**step, 1 - beta2**step) in float32 device
// memory that the kernel reads when it runs (the steps are then not used): a captured launch
// follows the values the host writes there before each replay.
void adam_update_multi(const AdamTensor* tensors, std::size_t n, double lr, double beta1,
                       double beta2, double eps, const float* corrections = nullptr);

}  // namespace fastconv::cuda
