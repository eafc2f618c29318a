#include "cpu/optim.h"

#include <cmath>

#include "cpu/threads.h"

namespace fastconv::cpu {

// Each element's update is independent, so any thread split gives bitwise the same result. The
// loops stream 3-4 arrays with a handful of flops each: memory bound, worth threads only when
// large. The branches on momentum/nesterov are loop-invariant; the compiler unswitches them.
template <typename T>
void sgd_update(T* param, T* velocity, const T* grad, index_t count, double lr_,
                double momentum_, bool nesterov, double weight_decay_) {
  const T lr = T(lr_), momentum = T(momentum_), weight_decay = T(weight_decay_);
  if (momentum_ == 0.0) {
#pragma omp parallel for simd schedule(static) num_threads(team(count)) if (count > (1 << 16))
    for (index_t i = 0; i < count; ++i) {
      const T g = grad[i] + weight_decay * param[i];
      param[i] -= lr * g;
    }
    return;
  }
#pragma omp parallel for simd schedule(static) num_threads(team(count)) if (count > (1 << 16))
  for (index_t i = 0; i < count; ++i) {
    const T g = grad[i] + weight_decay * param[i];
    const T v = momentum * velocity[i] + g;
    velocity[i] = v;
    const T step = nesterov ? g + momentum * v : v;
    param[i] -= lr * step;
  }
}

template <typename T>
void adam_update(T* param, T* m, T* v, const T* grad, index_t count, double lr_, double beta1_,
                 double beta2_, double eps_, double weight_decay_, index_t step) {
  const T lr = T(lr_), beta1 = T(beta1_), beta2 = T(beta2_), eps = T(eps_);
  const T weight_decay = T(weight_decay_);
  // Bias corrections once per call, in double: the rounded value is the one the numpy reference
  // gets from Python floats, and beta^step for large steps stays accurate.
  const T c1 = T(1.0 - std::pow(beta1_, double(step)));
  const T c2 = T(1.0 - std::pow(beta2_, double(step)));
  const T one_b1 = T(1.0 - beta1_), one_b2 = T(1.0 - beta2_);
  // Compute bound (two divisions and a sqrt per element). The build's -fno-math-errno lets GCC
  // use sqrtps/divps here (under -fmath-errno std::sqrt stayed scalar); both are correctly
  // rounded, so the vector loop has the scalar loop's bits.
#pragma omp parallel for simd schedule(static) num_threads(team(count)) if (count > (1 << 15))
  for (index_t i = 0; i < count; ++i) {
    const T g = grad[i] + weight_decay * param[i];
    const T mi = beta1 * m[i] + one_b1 * g;
    const T vi = beta2 * v[i] + one_b2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] -= lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
  }
}

template void sgd_update<float>(float*, float*, const float*, index_t, double, double, bool,
                                double);
template void sgd_update<double>(double*, double*, const double*, index_t, double, double, bool,
                                 double);
template void adam_update<float>(float*, float*, float*, const float*, index_t, double, double,
                                 double, double, double, index_t);
template void adam_update<double>(double*, double*, double*, const double*, index_t, double,
                                  double, double, double, double, index_t);

}  // namespace fastconv::cpu
