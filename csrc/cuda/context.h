// The process's CUDA context as fastconv uses it: one stream, one cuBLAS handle bound to it with
// a workspace from the caching allocator, the TF32 switch, and the row-major float32 GEMM every
// CUDA kernel file calls (the twin of cpu::gemm in csrc/cpu/blas.h).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "fastconv/common.h"

namespace fastconv::cuda {

// The one stream every launch and copy goes on: created on first use (which needs a device),
// non-blocking, so it never waits on work other libraries put on the legacy default stream.
// (Declared in device_array.h too.)
cudaStream_t stream();

// The cuBLAS handle (declared in runtime.h too), created on first use: bound to stream(), with a
// workspace from the caching allocator, and math mode following tf32().
cublasHandle_t cublas_handle();

// The handle's workspace (created with it): cuBLASLt calls on stream() use it too, which is safe
// because work on one stream runs in order.
void* cublas_workspace(std::size_t* bytes);

// TF32 tensor-core GEMMs (sm_80+): off by default (plain float32). Needs no device; the choice is
// stored and applies to every later gemm() and to the handle's math mode.
void set_tf32(bool on);
bool tf32();
// CUBLAS_COMPUTE_32F_FAST_TF32 when tf32() is on, else CUBLAS_COMPUTE_32F: for callers of
// cublasGemmEx / cublasGemmStridedBatchedEx other than gemm().
cublasComputeType_t gemm_compute_type();

// Row-major C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, float32, on stream().
// lda/ldb/ldc are the row strides of A, B and C as stored (before op), exactly as cpu::gemm.
// Asynchronous: returns once the work is queued.
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc);

}  // namespace fastconv::cuda
