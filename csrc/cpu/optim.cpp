#include "cpu/optim.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "cpu/threads.h"

namespace fastconv::cpu {
namespace {

// One team over the elements of all tensors, as if they were concatenated: thread t takes the
// t-th contiguous share and walks the tensors that share covers. Each element's update is
// independent, so any split gives bitwise the same result. Shares are whole grains of kGrain
// elements counted from each tensor's start (every tensor begins on a grain), so no thread's
// range starts mid-cache-line: unaligned splits made the update ~10% slower. The loops stream
// 3-4 arrays with a handful of flops each: worth threads only when the whole is large
// (`threshold`). The parameters are disjoint (the binding checks), so their sizes sum to less
// than the address space: the totals cannot overflow.
constexpr index_t kGrain = 16;

inline index_t grains(index_t count) { return (count + kGrain - 1) / kGrain; }

template <typename Tensor, typename Body>
void over_tensors(const Tensor* tensors, index_t n, index_t threshold, const Body& body) {
  index_t total = 0, total_grains = 0;
  for (index_t k = 0; k < n; ++k) {
    total += tensors[k].count;
    total_grains += grains(tensors[k].count);
  }
  if (total == 0) return;
#pragma omp parallel num_threads(team(total_grains)) if (total > threshold)
  {
    const index_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const index_t share = total_grains / threads, extra = total_grains % threads;
    const index_t lo = (t * share + std::min(t, extra)) * kGrain;
    const index_t hi = lo + (share + (t < extra ? 1 : 0)) * kGrain;
    index_t offset = 0;  // the tensor's first element, in grains * kGrain
    for (index_t k = 0; k < n && offset < hi; offset += grains(tensors[k].count) * kGrain, ++k) {
      const index_t count = tensors[k].count;
      const index_t begin = std::max(lo, offset) - offset;
      const index_t end = std::min(hi, offset + count) - offset;
      if (begin < end) body(tensors[k], begin, end);
    }
  }
}

// The branches on momentum/nesterov are loop-invariant; the compiler unswitches them.
template <typename T>
void sgd_range(const SgdTensor<T>& s, index_t begin, index_t end, T lr, bool use_momentum,
               T momentum, bool nesterov) {
  T* param = s.param;
  T* velocity = s.velocity;
  const T* grad = s.grad;
  const T weight_decay = T(s.weight_decay);
  if (!use_momentum) {
#pragma omp simd
    for (index_t i = begin; i < end; ++i) {
      const T g = grad[i] + weight_decay * param[i];
      param[i] -= lr * g;
    }
    return;
  }
#pragma omp simd
  for (index_t i = begin; i < end; ++i) {
    const T g = grad[i] + weight_decay * param[i];
    const T v = momentum * velocity[i] + g;
    velocity[i] = v;
    const T step = nesterov ? g + momentum * v : v;
    param[i] -= lr * step;
  }
}

template <typename T>
void adam_range(const AdamTensor<T>& a, index_t begin, index_t end, double lr_, double beta1_,
                double beta2_, double eps_) {
  T* param = a.param;
  T* m = a.m;
  T* v = a.v;
  const T* grad = a.grad;
  const T lr = T(lr_), beta1 = T(beta1_), beta2 = T(beta2_), eps = T(eps_);
  const T weight_decay = T(a.weight_decay);
  // Bias corrections in double: the rounded value is the one the numpy reference gets from
  // Python floats, and beta^step for large steps stays accurate.
  const T c1 = T(1.0 - std::pow(beta1_, double(a.step)));
  const T c2 = T(1.0 - std::pow(beta2_, double(a.step)));
  const T one_b1 = T(1.0 - beta1_), one_b2 = T(1.0 - beta2_);
  // Compute bound (two divisions and a sqrt per element). The build's -fno-math-errno lets GCC
  // use sqrtps/divps here (under -fmath-errno std::sqrt stayed scalar); both are correctly
  // rounded, so the vector loop has the scalar loop's bits.
#pragma omp simd
  for (index_t i = begin; i < end; ++i) {
    const T g = grad[i] + weight_decay * param[i];
    const T mi = beta1 * m[i] + one_b1 * g;
    const T vi = beta2 * v[i] + one_b2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] -= lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
  }
}

}  // namespace

template <typename T>
void sgd_update_multi(const SgdTensor<T>* tensors, index_t n, double lr, double momentum,
                      bool nesterov) {
  // momentum == 0 is tested in double: a tiny momentum that rounds to 0 in T still takes (and
  // writes) the velocity, as the single update always has.
  const bool use_momentum = momentum != 0.0;
  const T lr_t = T(lr), momentum_t = T(momentum);
  over_tensors(tensors, n, index_t(1) << 16,
               [&](const SgdTensor<T>& s, index_t begin, index_t end) {
                 sgd_range(s, begin, end, lr_t, use_momentum, momentum_t, nesterov);
               });
}

template <typename T>
void adam_update_multi(const AdamTensor<T>* tensors, index_t n, double lr, double beta1,
                       double beta2, double eps) {
  over_tensors(tensors, n, index_t(1) << 15,
               [&](const AdamTensor<T>& a, index_t begin, index_t end) {
                 adam_range(a, begin, end, lr, beta1, beta2, eps);
               });
}

// The single-tensor updates are the one-tensor case, so both entry points share every bit.
template <typename T>
void sgd_update(T* param, T* velocity, const T* grad, index_t count, double lr, double momentum,
                bool nesterov, double weight_decay) {
  const SgdTensor<T> s{param, velocity, grad, count, weight_decay};
  sgd_update_multi(&s, 1, lr, momentum, nesterov);
}

template <typename T>
void adam_update(T* param, T* m, T* v, const T* grad, index_t count, double lr, double beta1,
                 double beta2, double eps, double weight_decay, index_t step) {
  const AdamTensor<T> a{param, m, v, grad, count, weight_decay, step};
  adam_update_multi(&a, 1, lr, beta1, beta2, eps);
}

template void sgd_update<float>(float*, float*, const float*, index_t, double, double, bool,
                                double);
template void sgd_update<double>(double*, double*, const double*, index_t, double, double, bool,
                                 double);
template void adam_update<float>(float*, float*, float*, const float*, index_t, double, double,
                                 double, double, double, index_t);
template void adam_update<double>(double*, double*, double*, const double*, index_t, double,
                                  double, double, double, double, index_t);
template void sgd_update_multi<float>(const SgdTensor<float>*, index_t, double, double, bool);
template void sgd_update_multi<double>(const SgdTensor<double>*, index_t, double, double, bool);
template void adam_update_multi<float>(const AdamTensor<float>*, index_t, double, double, double,
                                       double);
template void adam_update_multi<double>(const AdamTensor<double>*, index_t, double, double,
                                        double, double);

}  // namespace fastconv::cpu
