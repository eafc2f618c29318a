#include "cpu/activation.h"

namespace fastconv::cpu {

template <typename T>
void relu_forward(T* y, const T* x, index_t count) {
#pragma omp parallel for simd schedule(static) if (count > (1 << 16))
  for (index_t i = 0; i < count; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}

template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, index_t count) {
#pragma omp parallel for simd schedule(static) if (count > (1 << 16))
  for (index_t i = 0; i < count; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template void relu_forward<float>(float*, const float*, index_t);
template void relu_forward<double>(double*, const double*, index_t);
template void relu_backward<float>(float*, const float*, const float*, index_t);
template void relu_backward<double>(double*, const double*, const double*, index_t);

}  // namespace fastconv::cpu
