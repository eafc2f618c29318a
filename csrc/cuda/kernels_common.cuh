// What every CUDA kernel file shares: block sizes, grid-stride loops, launch checks, and the
// warp/block reductions. Every reduction here combines its terms in an order fixed by the block
// size alone (never by timing), so results are bitwise reproducible run to run.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "cuda/runtime.h"
#include "fastconv/common.h"

namespace fastconv::cuda {

// Elementwise kernels: 256 threads a block; the grid is capped and the kernels loop (grid-stride),
// so any element count launches and big arrays reuse the resident blocks.
constexpr int kBlock = 256;
constexpr index_t kMaxBlocks = index_t(1) << 16;

inline unsigned blocks_for(index_t count, int block = kBlock) {
  const index_t want = (count + block - 1) / block;
  return static_cast<unsigned>(want < 1 ? 1 : (want < kMaxBlocks ? want : kMaxBlocks));
}

// Reductions: one block per output (the whole batch, or one chunk of a channel's terms:
// channel_sum.h), threads striding over the terms in a fixed pattern, then a shared-memory tree.
// A power of two for the tree.
constexpr int kReduceBlock = 256;

// Rows of a softmax: one warp each, kRowWarps warps a block.
constexpr int kWarp = 32;
constexpr int kRowWarps = 8;

// Whether a 4-wide (float4) kernel applies: rows of whole float4s (`row` % 4 == 0) and every
// array 16-byte aligned (the caching allocator's are; device arrays from elsewhere, e.g. DLPack
// views, need not be). Null arrays (an absent mask) pass.
inline bool vec4_ok(index_t row, std::initializer_list<const float*> arrays) {
  if (row % 4 != 0) return false;
  for (const float* a : arrays)
    if (a && reinterpret_cast<std::uintptr_t>(a) % 16 != 0) return false;
  return true;
}

}  // namespace fastconv::cuda

// for (i = global thread id; i < n; i += all threads), in 64-bit index math.
#define FC_GRID_LOOP(i, n)                                                            \
  for (::fastconv::index_t i = blockIdx.x * ::fastconv::index_t(blockDim.x) + threadIdx.x; \
       i < (n); i += ::fastconv::index_t(gridDim.x) * blockDim.x)

// The same in index type I: int32 on the 32-bit path of a Div policy (fastdiv.h), whose
// index32_fits bound leaves room for the last step past n without wrapping.
#define FC_GRID_LOOP_AS(I, i, n)                                          \
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < (n); \
       i += I(gridDim.x) * I(blockDim.x))

// A bad launch configuration surfaces here, at the launch that caused it, as a CudaError; errors
// inside a running kernel surface at the next synchronising call.
#define FC_LAUNCH_CHECK() FC_CUDA_CHECK(cudaGetLastError())

#if defined(__CUDACC__)
namespace fastconv::cuda {

// Butterfly (xor) reductions: every lane ends with the same bits, since each step adds the same
// two values (float + is commutative) in a pattern fixed by the lane numbers.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum of one value per thread over a block of kReduceBlock threads, in a fixed tree; the result
// is valid in thread 0. `buf` holds kReduceBlock elements of shared memory.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int half = kReduceBlock / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) buf[threadIdx.x] += buf[threadIdx.x + half];
    __syncthreads();
  }
  return buf[0];
}

}  // namespace fastconv::cuda
#endif
