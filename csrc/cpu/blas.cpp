#include "cpu/blas.h"

#include <omp.h>

#include <cblas.h>  // scipy-openblas32: every symbol carries the scipy_ prefix
#include <limits>
#include <stdexcept>

namespace fastconv::cpu {
namespace {

// The 32-bit-integer OpenBLAS build takes int dimensions; refuse rather than wrap.
blasint checked(index_t v) {
  if (v < 0 || v > std::numeric_limits<blasint>::max())
    throw std::length_error("matrix dimension exceeds the 32-bit BLAS interface");
  return static_cast<blasint>(v);
}

CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

}  // namespace

void gemm(bool ta, bool tb, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, op(ta), op(tb), checked(m), checked(n), checked(k), alpha, a,
                    checked(lda), b, checked(ldb), beta, c, checked(ldc));
}

void gemm(bool ta, bool tb, index_t m, index_t n, index_t k, double alpha, const double* a,
          index_t lda, const double* b, index_t ldb, double beta, double* c, index_t ldc) {
  // OpenBLAS's threaded dgemm rounds the last bit differently with 1 and 2 threads (its sgemm does
  // not). float64 is for gradient checks, where reproducibility beats speed: one thread.
  SingleThreadedBlas one;
  scipy_cblas_dgemm(CblasRowMajor, op(ta), op(tb), checked(m), checked(n), checked(k), alpha, a,
                    checked(lda), b, checked(ldb), beta, c, checked(ldc));
}

SingleThreadedBlas::SingleThreadedBlas() : before_(scipy_openblas_get_num_threads()) {
  if (before_ != 1) scipy_openblas_set_num_threads(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (before_ != 1) scipy_openblas_set_num_threads(before_);
}

void set_num_threads(int n) {
  omp_set_num_threads(n);
  scipy_openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }
int blas_num_threads() { return scipy_openblas_get_num_threads(); }
const char* blas_config() { return scipy_openblas_get_config(); }

}  // namespace fastconv::cpu
