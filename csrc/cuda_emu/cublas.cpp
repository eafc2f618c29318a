// The emulator's cuBLAS: handles that hold a math mode, and cublasGemmEx for float data, computed
// by the CPU module's BLAS (OpenBLAS's sgemm). cuBLAS's summation order is unspecified, so tests
// compare its results within a tolerance, never bitwise, and so do these.
#include <cblas.h>  // scipy-openblas32, as in csrc/cpu/blas.cpp
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "cublas_v2.h"
#include "emulator.h"
#include "tf32.h"

struct cublasContext {
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  cudaStream_t stream = nullptr;  // the legacy stream until set, as in cuBLAS
};

namespace {

using fc_emu::to_tf32;

// op(X) rounded to TF32, as a rows x cols column-major matrix (X: column-major, leading dim ld).
std::vector<float> tf32_copy(const float* x, int ld, bool trans, int rows, int cols) {
  std::vector<float> out(std::size_t(rows) * cols);
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) {
      const float v = trans ? x[std::size_t(i) * ld + j] : x[std::size_t(j) * ld + i];
      out[std::size_t(j) * rows + i] = to_tf32(v);
    }
  return out;
}

// One float GEMM's arguments, run now or at a graph's replay.
struct Gemm {
  bool ta, tb, tf32;
  int m, n, k;
  float alpha;
  const float* a;
  int lda;
  const float* b;
  int ldb;
  float beta;
  float* c;
  int ldc;

  void run() const {
    if (beta == 0.0f)  // C is not read: whatever it held (NaN included) must not reach the result
      for (int j = 0; j < n; ++j)
        std::fill(c + std::size_t(j) * ldc, c + std::size_t(j) * ldc + m, 0.0f);
    std::vector<float> a32, b32;
    if (tf32) {  // op(A) and op(B) rounded, untransposed
      a32 = tf32_copy(a, lda, ta, m, k);
      b32 = tf32_copy(b, ldb, tb, k, n);
    }
    scipy_cblas_sgemm(CblasColMajor, tf32 || !ta ? CblasNoTrans : CblasTrans,
                      tf32 || !tb ? CblasNoTrans : CblasTrans, m, n, k, alpha,
                      tf32 ? a32.data() : a, tf32 ? (m > 1 ? m : 1) : lda, tf32 ? b32.data() : b,
                      tf32 ? (k > 1 ? k : 1) : ldb, beta, c, ldc);
  }
};

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new (std::nothrow) cublasContext;
  return *handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void*, std::size_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
  if (!value) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  }
  return "unknown error";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void* alpha_p,
                            const void* a_p, cudaDataType a_type, int lda, const void* b_p,
                            cudaDataType b_type, int ldb, const void* beta_p, void* c_p,
                            cudaDataType c_type, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (a_type != CUDA_R_32F || b_type != CUDA_R_32F || c_type != CUDA_R_32F ||
      (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  const auto at_least = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
  if (m < 0 || n < 0 || k < 0 || !alpha_p || !beta_p || !at_least(lda, ta ? k : m) ||
      !at_least(ldb, tb ? n : k) || !at_least(ldc, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  // alpha and beta are host scalars, read at the call; the matrices are read when the GEMM runs
  // (at a graph's replay, where the handle's stream captures).
  const float alpha = *static_cast<const float*>(alpha_p);
  const float beta = *static_cast<const float*>(beta_p);
  const bool tf32 =
      compute == CUBLAS_COMPUTE_32F_FAST_TF32 || handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
  const Gemm gemm{ta, tb, tf32, m, n, k, alpha, static_cast<const float*>(a_p), lda,
                  static_cast<const float*>(b_p), ldb, beta, static_cast<float*>(c_p), ldc};
  const cudaError_t err = fc_emu::run_or_record(handle->stream, [gemm] {
    gemm.run();
    return cudaSuccess;
  });
  return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
