#include "cpu/dense.h"

#include "cpu/blas.h"
#include "cpu/threads.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {

// Named as the caller spells them: checked on the calling thread, before any parallel region
// (gemm_parallel would refuse them too, but only as "gemm: k").
void check_dense_dims(index_t n, index_t in, index_t out) {
  check_blas_dim(n, "x.shape[0] (batch)");
  check_blas_dim(in, "x.shape[1] (input features)");
  check_blas_dim(out, "w.shape[1] (output features)");
}

namespace {

constexpr index_t kParallelWork = index_t(1) << 15;
// dense_backward's masked dy (no other kernel runs inside it: any slot would do).
constexpr std::size_t kMaskSlot = 0;
// Columns per task in sum_rows: wide enough for SIMD, narrow enough to split Out = 128 in two.
constexpr index_t kColumnBlock = 64;

// db (Out) = sum over the n rows of dy (n, out), each column summed in row order.
template <typename T>
void sum_rows(T* db, const T* dy, index_t n, index_t out) {
  const index_t blocks = (out + kColumnBlock - 1) / kColumnBlock;
  // Parallel over column blocks only: each column is still summed row 0, 1, ..., n-1.
#pragma omp parallel for schedule(static) num_threads(team(blocks)) if (n * out > kParallelWork)
  for (index_t blk = 0; blk < blocks; ++blk) {
    const index_t j0 = blk * kColumnBlock;
    const index_t j1 = min_i(j0 + kColumnBlock, out);
    T* d = db + j0;
#pragma omp simd
    for (index_t j = j0; j < j1; ++j) d[j - j0] = T(0);
    for (index_t i = 0; i < n; ++i) {
      const T* row = dy + i * out;
#pragma omp simd
      for (index_t j = j0; j < j1; ++j) d[j - j0] += row[j];
    }
  }
}

}  // namespace

template <typename T>
void dense_forward(T* y, const T* x, const T* w, const T* b, index_t n, index_t in, index_t out,
                   bool relu) {
  check_dense_dims(n, in, out);
  gemm_parallel_bias_relu(false, false, n, out, in, T(1), x, in, w, out, b, relu, y, out);
}

template <typename T>
void dense_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy, const T* relu_y,
                    index_t n, index_t in, index_t out) {
  check_dense_dims(n, in, out);
  const T* g = dy;
  if (relu_y) {
    // The ReLU's gradient once, into scratch that the three products then read: the same values
    // relu_backward gives the unfused chain, so the same bits after.
    const SizeCalc size{"dense_backward", "the ReLU-masked dy"};
    T* masked = scratch<T>(kMaskSlot, size.mul(size.count(n), size.count(out)), size);
#pragma omp parallel for schedule(static) num_threads(team(n)) if (n * out > kParallelWork)
    for (index_t i = 0; i < n; ++i) {
      const T* dyi = dy + i * out;
      const T* yi = relu_y + i * out;
      T* gi = masked + i * out;
#pragma omp simd
      for (index_t j = 0; j < out; ++j) {
        const T d = dyi[j], v = yi[j];  // both loaded: a select, not a branch (as relu_backward)
        gi[j] = v > T(0) ? d : T(0);
      }
    }
    g = masked;
  }
  if (dx) gemm_parallel(false, true, n, in, out, T(1), g, out, w, out, T(0), dx, in);
  gemm_parallel(true, false, in, out, n, T(1), x, in, g, out, T(0), dw, out);
  if (db) sum_rows(db, g, n, out);
}

template <typename T>
void bias_add(T* y, const T* x, const T* b, index_t n, index_t c, index_t inner) {
#pragma omp parallel for schedule(static) num_threads(team(n * c)) \
    if (n * c * inner > kParallelWork)
  for (index_t p = 0; p < n * c; ++p) {
    const T bc = b[p % c];
    const T* xp = x + p * inner;
    T* yp = y + p * inner;
#pragma omp simd
    for (index_t k = 0; k < inner; ++k) yp[k] = xp[k] + bc;
  }
}

template <typename T>
void bias_grad(T* db, const T* dy, index_t n, index_t c, index_t inner) {
  if (inner == 1) {  // (N, C): a column sum, better done a block of columns at a time
    sum_rows(db, dy, n, c);
    return;
  }
  // One channel per task: its planes are summed in batch order, so the bits never depend on
  // how the channels are spread over threads.
#pragma omp parallel for schedule(static) num_threads(team(c)) if (n * c * inner > kParallelWork)
  for (index_t ch = 0; ch < c; ++ch) {
    T acc = T(0);
    for (index_t i = 0; i < n; ++i) {
      const T* plane = dy + (i * c + ch) * inner;
      T s = T(0);
#pragma omp simd reduction(+ : s)
      for (index_t k = 0; k < inner; ++k) s += plane[k];
      acc += s;
    }
    db[ch] = acc;
  }
}

#define FC_INSTANTIATE(T)                                                                     \
  template void dense_forward<T>(T*, const T*, const T*, const T*, index_t, index_t, index_t,  \
                                 bool);                                                        \
  template void dense_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, index_t, \
                                  index_t, index_t);                                           \
  template void bias_add<T>(T*, const T*, const T*, index_t, index_t, index_t);                \
  template void bias_grad<T>(T*, const T*, index_t, index_t, index_t);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)
#undef FC_INSTANTIATE

}  // namespace fastconv::cpu
