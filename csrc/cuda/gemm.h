// The one door to cuBLAS for the kernels: row-major GEMM with the same contract as cpu::gemm
// (csrc/cpu/blas.h), so the CUDA bodies read like their CPU twins.
#pragma once
#include "fastconv/common.h"

namespace fastconv::cuda {

// Row-major C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, queued on stream().
// lda/ldb/ldc are the row strides of A, B and C as stored (before op). Plain float32 arithmetic,
// or TF32 tensor cores where the process-wide TF32 mode is on.
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc);

}  // namespace fastconv::cuda
