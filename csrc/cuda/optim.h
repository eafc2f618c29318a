// SGD and Adam on the GPU, float32: the twins of csrc/cpu/optim.h, launched on stream().
#pragma once
#include "fastconv/common.h"

namespace fastconv::cuda {

// The CPU's update formulas (csrc/cpu/optim.h), operation for operation, with every multiply
// and add rounded separately (no fused multiply-add), so the GPU update equals the CPU's bits.
void sgd_update(float* param, float* velocity, const float* grad, index_t count, double lr,
                double momentum, bool nesterov, double weight_decay);
void adam_update(float* param, float* m, float* v, const float* grad, index_t count, double lr,
                 double beta1, double beta2, double eps, double weight_decay, index_t step);

}  // namespace fastconv::cuda
