// The smallest useful kernel: fill a float buffer (used to poison outputs in tests).
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

__global__ void fill_kernel(float* dst, std::size_t count, float value) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}

}  // namespace

void launch_fill(float* dst, std::size_t count, float value, cudaStream_t stream) {
  if (count == 0) return;
  const unsigned threads = 256;
  const std::size_t want = (count + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(want < 65535 ? want : 65535);
  fill_kernel<<<blocks, threads, 0, stream>>>(dst, count, value);
}

}  // namespace fastconv::cuda
