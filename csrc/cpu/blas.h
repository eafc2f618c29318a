// The one door to the CPU BLAS (OpenBLAS from the scipy-openblas32 wheel).
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// Row-major C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C.
// lda/ldb/ldc are the row strides of A, B and C as stored (before op).
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc);
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
          const double* a, index_t lda, const double* b, index_t ldb, double beta, double* c,
          index_t ldc);

// For an OpenMP loop whose iterations each call GEMMs: while it lives, OpenBLAS runs every call on
// the calling thread, so the two thread pools do not fight over the cores, and each GEMM's result
// cannot depend on how many threads there are.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int before_;
};

// OpenMP and OpenBLAS keep separate thread pools; fastconv sets both to the same count.
void set_num_threads(int n);
int num_threads();
int blas_num_threads();
const char* blas_config();

}  // namespace fastconv::cpu
