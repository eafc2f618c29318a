// The training loop's device-side helpers: gathering a batch, argmax, accuracy. The reduction
// (accuracy_count) uses one block and a fixed tree.
#include "cuda/data.h"

#include <cstdint>

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// Copies whole elements as same-sized integers: the bits move, whatever the dtype.
template <typename Word>
__global__ void gather_rows_kernel(Word* out, const Word* data, const std::int64_t* indices,
                                   index_t n, index_t rows_in, index_t row,
                                   unsigned long long* first_bad) {
  FC_GRID_LOOP(e, n * row) {
    const index_t i = e / row;
    const std::int64_t src = indices[i];
    if (src < 0 || src >= rows_in) {
      // Only the error path touches an atomic, and its result (the smallest bad position) does
      // not depend on which thread gets there first.
      atomicMin(first_bad, static_cast<unsigned long long>(i));
      out[e] = Word(0);
    } else {
      out[e] = data[src * row + e % row];
    }
  }
}

// The CPU pooling's tie and NaN rule: strictly greater replaces, the first NaN wins and stays.
__device__ __forceinline__ bool better(float v, float best) { return !(v <= best) && best == best; }

__device__ __forceinline__ std::int64_t row_argmax(const float* row, index_t c) {
  float best = row[0];
  std::int64_t bi = 0;
  for (index_t j = 1; j < c; ++j) {
    if (better(row[j], best)) {
      best = row[j];
      bi = j;
    }
  }
  return bi;
}

__global__ void argmax_kernel(std::int64_t* out, const float* x, index_t n, index_t c) {
  FC_GRID_LOOP(i, n) out[i] = row_argmax(x + i * c, c);
}

// One block: integer counts add exactly in any order, but the tree keeps it simple and fixed.
__global__ void accuracy_kernel(std::int64_t* count, const float* z, const std::int64_t* labels,
                                const float* t, index_t n, index_t c) {
  __shared__ long long buf[kReduceBlock];
  long long hits = 0;
  for (index_t i = threadIdx.x; i < n; i += kReduceBlock) {
    const std::int64_t want = t ? row_argmax(t + i * c, c) : labels[i];
    hits += row_argmax(z + i * c, c) == want ? 1 : 0;
  }
  const long long total = block_sum(hits, buf);
  if (threadIdx.x == 0) *count = total;
}

}  // namespace

void gather_rows(void* out, const void* data, const std::int64_t* indices, index_t n,
                 index_t rows_in, index_t row, int elem_bytes, unsigned long long* first_bad) {
  if (n == 0 || row == 0) return;
  const index_t count = n * row;
  if (elem_bytes == 4) {
    gather_rows_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        static_cast<std::uint32_t*>(out), static_cast<const std::uint32_t*>(data), indices, n,
        rows_in, row, first_bad);
  } else {
    gather_rows_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        static_cast<std::uint64_t*>(out), static_cast<const std::uint64_t*>(data), indices, n,
        rows_in, row, first_bad);
  }
  FC_LAUNCH_CHECK();
}

void argmax_rows(std::int64_t* out, const float* x, index_t n, index_t c) {
  if (n == 0) return;
  argmax_kernel<<<blocks_for(n), kBlock, 0, stream()>>>(out, x, n, c);
  FC_LAUNCH_CHECK();
}

void accuracy_count(std::int64_t* count, const float* z, const std::int64_t* labels,
                    const float* t, index_t n, index_t c) {
  accuracy_kernel<<<1, kReduceBlock, 0, stream()>>>(count, z, labels, t, n, c);
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
