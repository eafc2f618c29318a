#include "cpu/conv_pool.h"

#include <cstddef>
#include <cstdint>

#include "cpu/bit_select.h"
#include "cpu/conv.h"
#include "cpu/pool.h"
#include "cpu/threads.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {
namespace {

// Scratch slots (cpu/workspace.h) above those conv2d_* (0-3) and the pooling (0-2) use, as this
// kernel calls both: z in the forward, dz in the backward; and the backward's pooled gradient
// through the ReLU mask.
constexpr std::size_t kZSlot = 4;
constexpr std::size_t kMaskSlot = 5;

// z's elements, for the scratch requests.
std::size_t z_count(const Conv2dShape& s, const SizeCalc& size) {
  return size.mul(size.mul(size.count(s.n), size.count(s.k)), size.count(s.out_plane()));
}

}  // namespace

Pool2dShape conv_pool_shape(const Conv2dShape& s) {
  return Pool2dShape{s.n, s.k, s.oh, s.ow, 2, 2, 2, 2, 0, 0, s.oh / 2, s.ow / 2};
}

template <typename T, typename I>
void conv2d_relu_max_pool2d_forward(T* y, I* argmax, const T* x, const T* w, const T* b,
                                    const Conv2dShape& s) {
  const SizeCalc size{"conv2d_relu_max_pool2d_forward", "convolution output"};
  T* z = scratch<T>(kZSlot, z_count(s, size), size);
  conv2d_forward(z, x, w, b, s, true);
  max_pool2d_forward(y, argmax, z, conv_pool_shape(s));
}

// The pooled gradient through the mask (y > 0), then the pool's own backward scatters it to dz
// (+0 off the argmax, and in an odd last row or column), then the convolution's backward: the
// same dz the unfused chain hands conv2d_backward after its relu_y mask, without a pass over z.
template <typename T, typename I>
void conv2d_relu_max_pool2d_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy,
                                     const T* y, const I* argmax, const Conv2dShape& s) {
  const Pool2dShape ps = conv_pool_shape(s);
  const index_t pooled = ps.n * ps.c * ps.oh * ps.ow;
  const SizeCalc zsize{"conv2d_relu_max_pool2d_backward", "convolution output gradient"};
  T* dz = scratch<T>(kZSlot, z_count(s, zsize), zsize);
  const SizeCalc msize{"conv2d_relu_max_pool2d_backward", "masked pooled gradient"};
  T* masked = scratch<T>(kMaskSlot, msize.count(pooled), msize);
#pragma omp parallel for schedule(static) num_threads(team(pooled)) if (pooled > (1 << 15))
  for (index_t i = 0; i < pooled; ++i) masked[i] = keep_if_positive(y[i], dy[i]);
  max_pool2d_backward(dz, masked, argmax, ps);
  conv2d_backward(dx, dw, db, x, w, dz, static_cast<const T*>(nullptr), s);
}

#define FC_CONV_POOL(T, I)                                                                   \
  template void conv2d_relu_max_pool2d_forward<T, I>(T*, I*, const T*, const T*, const T*,      \
                                                     const Conv2dShape&);                       \
  template void conv2d_relu_max_pool2d_backward<T, I>(T*, T*, T*, const T*, const T*, const T*, \
                                                      const T*, const I*, const Conv2dShape&);
FC_CONV_POOL(float, index_t)
FC_CONV_POOL(double, index_t)
FC_CONV_POOL(float, std::uint8_t)
FC_CONV_POOL(double, std::uint8_t)
#undef FC_CONV_POOL

}  // namespace fastconv::cpu
