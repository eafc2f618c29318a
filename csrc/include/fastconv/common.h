// What every kernel file shares: the index type and the host/device marker.
#pragma once
#include <cstdint>

// Geometry and RNG helpers compile for the CPU (g++) and the GPU (nvcc) from one source.
#if defined(__CUDACC__)
#define FC_HD __host__ __device__ __forceinline__
#else
#define FC_HD inline
#endif

namespace fastconv {
// 64-bit index math everywhere: N*C*H*W overflows 32 bits on realistic batches of large images.
using index_t = std::int64_t;

FC_HD index_t min_i(index_t a, index_t b) { return a < b ? a : b; }
FC_HD index_t max_i(index_t a, index_t b) { return a > b ? a : b; }
}  // namespace fastconv
