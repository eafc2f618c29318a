// Parameter updates, in place, elementwise over flat arrays of any shape. Hyper-parameters arrive
// already validated (the binding checks ranges) as double; derived constants such as (1 - beta1)
// and the bias corrections are formed in double and rounded once to the array's precision T.
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// SGD with optional L2 weight decay, momentum and Nesterov momentum:
//   g = grad + weight_decay * param
//   momentum != 0:  v = momentum * v + g;  step = nesterov ? g + momentum * v : v
//   momentum == 0:  step = g                 (velocity untouched; may be null)
//   param -= lr * step
template <typename T>
void sgd_update(T* param, T* velocity, const T* grad, index_t count, double lr, double momentum,
                bool nesterov, double weight_decay);

// Adam; `step` is the 1-based count of this update (for the bias corrections):
//   g = grad + weight_decay * param
//   m = beta1 m + (1-beta1) g;  v = beta2 v + (1-beta2) g^2
//   param -= lr * (m / (1-beta1^step)) / (sqrt(v / (1-beta2^step)) + eps)
template <typename T>
void adam_update(T* param, T* m, T* v, const T* grad, index_t count, double lr, double beta1,
                 double beta2, double eps, double weight_decay, index_t step);

// Many parameters in one call (one thread team over all their elements), each updated exactly as
// the single-tensor function above would update it: the same formulas, bit for bit. The arrays
// of different tensors must not overlap (the binding checks); velocity may be null when
// momentum == 0.
template <typename T>
struct SgdTensor {
  T* param;
  T* velocity;
  const T* grad;
  index_t count;
  double weight_decay;
};
template <typename T>
void sgd_update_multi(const SgdTensor<T>* tensors, index_t n, double lr, double momentum,
                      bool nesterov);

template <typename T>
struct AdamTensor {
  T* param;
  T* m;
  T* v;
  const T* grad;
  index_t count;
  double weight_decay;
  index_t step;
};
template <typename T>
void adam_update_multi(const AdamTensor<T>* tensors, index_t n, double lr, double beta1,
                       double beta2, double eps);

}  // namespace fastconv::cpu
