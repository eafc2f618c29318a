// The one door to the CPU BLAS (OpenBLAS from the scipy-openblas32 wheel).
//
// One thread pool: OpenBLAS always runs single-threaded on the calling thread, and fastconv's
// OpenMP threads supply the parallelism. Two pools on the same cores fight (OpenBLAS's workers
// spin after a call while OpenMP's loops want the cores), and a GEMM whose work is split by
// OpenBLAS rounds differently with the thread count. gemm_parallel splits C into tiles fixed by
// the shape alone, so its result is bitwise the same on any number of threads.
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// The 32-bit OpenBLAS interface takes int dimensions. Every dimension and row stride passed to
// gemm must be at most kBlasMaxDim: check it with check_blas_dim before any parallel region
// (gemm runs inside them, where it must not throw).
constexpr index_t kBlasMaxDim = 2147483647;

// std::invalid_argument "<name> must be at most 2147483647 (the 32-bit BLAS limit); got <v>".
void check_blas_dim(index_t v, const char* name);

// Row-major C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, on the calling thread.
// lda/ldb/ldc are the row strides of A, B and C as stored (before op).
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc);
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
          const double* a, index_t lda, const double* b, index_t ldb, double beta, double* c,
          index_t ldc);

// The same product, its tiles of C computed in parallel (call it outside a parallel region). It
// checks the BLAS limits itself, before its region, naming m, n, k as "gemm: m" etc.; callers
// that can name the user's argument check first.
template <typename T>
void gemm_parallel(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
                   const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc);

// C (m x n) = alpha * op(A) * op(B) + bias (the same row in every row of C), then max(C, 0)
// when `relu` (NaN passes, as relu_forward): gemm_parallel's tiles, each set to its part of the
// bias before its product (beta = 1) and clamped right after it, while it is in cache: the
// dense layer's bias and ReLU without another pass over C. bias may be null (C = the product).
template <typename T>
void gemm_parallel_bias_relu(bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                             T alpha, const T* a, index_t lda, const T* b, index_t ldb,
                             const T* bias, bool relu, T* c, index_t ldc);

int blas_num_threads();  // always 1: the parallelism is fastconv's (cpu/threads.h)
const char* blas_config();

}  // namespace fastconv::cpu
