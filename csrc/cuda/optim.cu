// SGD and Adam on the GPU, float32: the twins of csrc/cpu/optim.cpp, one thread per element.
#include "cuda/optim.h"

#include <cmath>

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// The CPU formulas with each operation rounded on its own: nvcc would otherwise contract a * b + c
// into one fused multiply-add, which rounds once and so differs from the CPU in the last bit.
__global__ void sgd_plain_kernel(float* param, const float* grad, index_t count, float lr,
                                 float weight_decay) {
  FC_GRID_LOOP(i, count) {
    const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    param[i] = __fsub_rn(param[i], __fmul_rn(lr, g));
  }
}

__global__ void sgd_momentum_kernel(float* param, float* velocity, const float* grad,
                                    index_t count, float lr, float momentum, bool nesterov,
                                    float weight_decay) {
  FC_GRID_LOOP(i, count) {
    const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    const float v = __fadd_rn(__fmul_rn(momentum, velocity[i]), g);
    velocity[i] = v;
    const float step = nesterov ? __fadd_rn(g, __fmul_rn(momentum, v)) : v;
    param[i] = __fsub_rn(param[i], __fmul_rn(lr, step));
  }
}

__global__ void adam_kernel(float* param, float* m, float* v, const float* grad, index_t count,
                            float lr, float beta1, float beta2, float eps, float weight_decay,
                            float c1, float c2, float one_b1, float one_b2) {
  FC_GRID_LOOP(i, count) {
    const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
    const float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(one_b1, g));
    const float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(one_b2, __fmul_rn(g, g)));
    m[i] = mi;
    v[i] = vi;
    // param -= lr * (mi / c1) / (sqrt(vi / c2) + eps), evaluated left to right as in C++.
    const float num = __fmul_rn(lr, __fdiv_rn(mi, c1));
    const float den = __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, c2)), eps);
    param[i] = __fsub_rn(param[i], __fdiv_rn(num, den));
  }
}

}  // namespace

void sgd_update(float* param, float* velocity, const float* grad, index_t count, double lr,
                double momentum, bool nesterov, double weight_decay) {
  if (count == 0) return;
  if (momentum == 0.0) {
    sgd_plain_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(param, grad, count, float(lr),
                                                                 float(weight_decay));
  } else {
    sgd_momentum_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        param, velocity, grad, count, float(lr), float(momentum), nesterov, float(weight_decay));
  }
  FC_LAUNCH_CHECK();
}

void adam_update(float* param, float* m, float* v, const float* grad, index_t count, double lr,
                 double beta1, double beta2, double eps, double weight_decay, index_t step) {
  if (count == 0) return;
  // Constants exactly as cpu::adam_update forms them: in double, rounded once to float.
  const float c1 = float(1.0 - std::pow(beta1, double(step)));
  const float c2 = float(1.0 - std::pow(beta2, double(step)));
  adam_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
      param, m, v, grad, count, float(lr), float(beta1), float(beta2), float(eps),
      float(weight_decay), c1, c2, float(1.0 - beta1), float(1.0 - beta2));
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
