// SGD and Adam on the GPU, float32: the twins of csrc/cpu/optim.cpp. The single-tensor kernels
// run one thread per element; the multi-tensor kernels update up to kMultiTensors parameters in
// one launch. Both evaluate each element with the same device functions, so their bits agree.
#include "cuda/optim.h"

#include <cmath>

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"
#include "fastconv/bias_correction.h"

namespace fastconv::cuda {
namespace {

// The CPU formulas with each operation rounded on its own: nvcc would otherwise contract a * b + c
// into one fused multiply-add, which rounds once and so differs from the CPU in the last bit.
__device__ __forceinline__ void sgd_plain_at(float* param, const float* grad, index_t i, float lr,
                                             float weight_decay) {
  const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
  param[i] = __fsub_rn(param[i], __fmul_rn(lr, g));
}

__device__ __forceinline__ void sgd_momentum_at(float* param, float* velocity, const float* grad,
                                                index_t i, float lr, float momentum,
                                                bool nesterov, float weight_decay) {
  const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
  const float v = __fadd_rn(__fmul_rn(momentum, velocity[i]), g);
  velocity[i] = v;
  const float step = nesterov ? __fadd_rn(g, __fmul_rn(momentum, v)) : v;
  param[i] = __fsub_rn(param[i], __fmul_rn(lr, step));
}

// c1, c2: the bias corrections; one_b1, one_b2: 1 - beta (all formed in double on the host).
struct AdamConsts {
  float lr, beta1, beta2, eps, one_b1, one_b2;
};

__device__ __forceinline__ void adam_at(float* param, float* m, float* v, const float* grad,
                                        index_t i, const AdamConsts& k, float weight_decay,
                                        float c1, float c2) {
  const float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, param[i]));
  const float mi = __fadd_rn(__fmul_rn(k.beta1, m[i]), __fmul_rn(k.one_b1, g));
  const float vi = __fadd_rn(__fmul_rn(k.beta2, v[i]), __fmul_rn(k.one_b2, __fmul_rn(g, g)));
  m[i] = mi;
  v[i] = vi;
  // param -= lr * (mi / c1) / (sqrt(vi / c2) + eps), evaluated left to right as in C++.
  const float num = __fmul_rn(k.lr, __fdiv_rn(mi, c1));
  const float den = __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, c2)), k.eps);
  param[i] = __fsub_rn(param[i], __fdiv_rn(num, den));
}

// Constants exactly as cpu::adam_update forms them: in double, rounded once to float.
AdamConsts adam_consts(double lr, double beta1, double beta2, double eps) {
  return {float(lr), float(beta1), float(beta2), float(eps), float(1.0 - beta1),
          float(1.0 - beta2)};
}
float bias_correction(double beta, index_t step) { return bias_correction_f32(beta, step); }

__global__ void sgd_plain_kernel(float* param, const float* grad, index_t count, float lr,
                                 float weight_decay) {
  FC_GRID_LOOP(i, count) sgd_plain_at(param, grad, i, lr, weight_decay);
}

__global__ void sgd_momentum_kernel(float* param, float* velocity, const float* grad,
                                    index_t count, float lr, float momentum, bool nesterov,
                                    float weight_decay) {
  FC_GRID_LOOP(i, count)
  sgd_momentum_at(param, velocity, grad, i, lr, momentum, nesterov, weight_decay);
}

__global__ void adam_kernel(float* param, float* m, float* v, const float* grad, index_t count,
                            AdamConsts k, float weight_decay, float c1, float c2) {
  FC_GRID_LOOP(i, count) adam_at(param, m, v, grad, i, k, weight_decay, c1, c2);
}

// ---- many tensors a launch ----------------------------------------------------------------------
// The table is a kernel argument (by value: no copy to device memory, so the launch is graph
// capturable). Tensor t owns blocks [first_block[t], first_block[t + 1]) (none when empty); each
// of its blocks strides over the tensor, as FC_GRID_LOOP does over a grid of that many blocks.
struct MultiBlocks {
  index_t count[kMultiTensors];
  int first_block[kMultiTensors + 1];
  int n;
};

struct SgdTable {
  MultiBlocks blocks;
  float* param[kMultiTensors];
  float* velocity[kMultiTensors];  // all null: plain SGD (momentum == 0)
  const float* grad[kMultiTensors];
  float weight_decay[kMultiTensors];
  float lr, momentum;
  bool nesterov;
};

struct AdamTable {
  MultiBlocks blocks;
  float* param[kMultiTensors];
  float* m[kMultiTensors];
  float* v[kMultiTensors];
  const float* grad[kMultiTensors];
  float weight_decay[kMultiTensors], c1[kMultiTensors], c2[kMultiTensors];
  // Non-null: tensor t's (c1, c2) are read at run time from corrections[2t], [2t + 1] (device
  // memory, rewritten by the host before each replay of a captured graph), not from c1/c2.
  const float* corrections;
  AdamConsts k;
};

// Kernel parameters are limited to 4 KiB (32 KiB from CUDA 12.1 on Volta+); stay well inside.
static_assert(sizeof(SgdTable) <= 2048 && sizeof(AdamTable) <= 2048, "tensor table too big");

// This block's tensor t and its element range: start at `first`, step by `stride`.
struct BlockSlot {
  int t;
  index_t first, stride;
};

__device__ __forceinline__ BlockSlot block_slot(const MultiBlocks& b) {
  const int block = static_cast<int>(blockIdx.x);
  int t = 0;
  while (block >= b.first_block[t + 1]) ++t;  // n <= kMultiTensors: a short scan
  const index_t local = block - b.first_block[t];
  const index_t blocks = b.first_block[t + 1] - b.first_block[t];
  return {t, local * blockDim.x + threadIdx.x, blocks * blockDim.x};
}

__global__ void sgd_multi_kernel(SgdTable s) {
  const BlockSlot slot = block_slot(s.blocks);
  const int t = slot.t;
  const index_t count = s.blocks.count[t];
  if (s.velocity[t] == nullptr) {
    for (index_t i = slot.first; i < count; i += slot.stride)
      sgd_plain_at(s.param[t], s.grad[t], i, s.lr, s.weight_decay[t]);
    return;
  }
  for (index_t i = slot.first; i < count; i += slot.stride)
    sgd_momentum_at(s.param[t], s.velocity[t], s.grad[t], i, s.lr, s.momentum, s.nesterov,
                    s.weight_decay[t]);
}

__global__ void adam_multi_kernel(AdamTable a) {
  const BlockSlot slot = block_slot(a.blocks);
  const int t = slot.t;
  const index_t count = a.blocks.count[t];
  const float c1 = a.corrections ? a.corrections[2 * t] : a.c1[t];
  const float c2 = a.corrections ? a.corrections[2 * t + 1] : a.c2[t];
  for (index_t i = slot.first; i < count; i += slot.stride)
    adam_at(a.param[t], a.m[t], a.v[t], a.grad[t], i, a.k, a.weight_decay[t], c1, c2);
}

// Adds tensor `slot` of `count` elements to the table's block plan; returns the grid so far.
int plan_tensor(MultiBlocks& b, int slot, index_t count) {
  b.count[slot] = count;
  // blocks_for caps a tensor at kMaxBlocks (2**16), so kMultiTensors of them fit an int.
  const int blocks = count == 0 ? 0 : static_cast<int>(blocks_for(count));
  b.first_block[slot + 1] = b.first_block[slot] + blocks;
  b.n = slot + 1;
  return b.first_block[slot + 1];
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
  adam_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
      param, m, v, grad, count, adam_consts(lr, beta1, beta2, eps), float(weight_decay),
      bias_correction(beta1, step), bias_correction(beta2, step));
  FC_LAUNCH_CHECK();
}

void sgd_update_multi(const SgdTensor* tensors, std::size_t n, double lr, double momentum,
                      bool nesterov) {
  for (std::size_t first = 0; first < n; first += kMultiTensors) {
    SgdTable s{};
    s.lr = float(lr);
    s.momentum = float(momentum);
    s.nesterov = nesterov;
    int grid = 0;
    for (int k = 0; k < kMultiTensors && first + k < n; ++k) {
      const SgdTensor& x = tensors[first + k];
      s.param[k] = x.param;
      s.velocity[k] = momentum == 0.0 ? nullptr : x.velocity;
      s.grad[k] = x.grad;
      s.weight_decay[k] = float(x.weight_decay);
      grid = plan_tensor(s.blocks, k, x.count);
    }
    if (grid == 0) continue;  // only empty tensors
    sgd_multi_kernel<<<grid, kBlock, 0, stream()>>>(s);
    FC_LAUNCH_CHECK();
  }
}

void adam_update_multi(const AdamTensor* tensors, std::size_t n, double lr, double beta1,
                       double beta2, double eps, const float* corrections) {
  for (std::size_t first = 0; first < n; first += kMultiTensors) {
    AdamTable a{};
    a.k = adam_consts(lr, beta1, beta2, eps);
    a.corrections = corrections ? corrections + 2 * first : nullptr;
    int grid = 0;
    for (int k = 0; k < kMultiTensors && first + k < n; ++k) {
      const AdamTensor& x = tensors[first + k];
      a.param[k] = x.param;
      a.m[k] = x.m;
      a.v[k] = x.v;
      a.grad[k] = x.grad;
      a.weight_decay[k] = float(x.weight_decay);
      a.c1[k] = bias_correction(beta1, x.step);
      a.c2[k] = bias_correction(beta2, x.step);
      grid = plan_tensor(a.blocks, k, x.count);
    }
    if (grid == 0) continue;
    adam_multi_kernel<<<grid, kBlock, 0, stream()>>>(a);
    FC_LAUNCH_CHECK();
  }
}

}  // namespace fastconv::cuda
