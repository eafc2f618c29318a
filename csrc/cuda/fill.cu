// The one fill kernel: DeviceArray.fill and the poisoned outputs of tests (NaN for floats, the
// lowest integer for int64).
#include "cuda/fill.h"

#include <cstdint>

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* dst, index_t count, T value) {
  FC_GRID_LOOP(i, count) dst[i] = value;
}

}  // namespace

void fill(float* dst, index_t count, float value) {
  if (count == 0) return;
  fill_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(dst, count, value);
  FC_LAUNCH_CHECK();
}

void fill(std::int64_t* dst, index_t count, std::int64_t value) {
  if (count == 0) return;
  fill_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(dst, count, value);
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
