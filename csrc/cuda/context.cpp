#include "cuda/context.h"

#include <atomic>
#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/allocator.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

std::atomic<bool> g_tf32{false};
std::mutex g_handle_mutex;
cublasHandle_t g_handle = nullptr;  // guarded by g_handle_mutex until set, then read-only
void* g_workspace = nullptr;         // set with g_handle
std::size_t g_workspace_bytes = 0;

cublasMath_t math_mode(bool tf32_on) {
  return tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
}

// cuBLAS asks for 32 MiB of workspace on Hopper and 4 MiB on earlier cards.
std::size_t workspace_bytes() {
  int device = 0, major = 0;
  FC_CUDA_CHECK(cudaGetDevice(&device));
  FC_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return std::size_t(major >= 9 ? 32 : 4) << 20;
}

int as_int(index_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("cuda::gemm: ") + what + " = " + std::to_string(v) +
                                " is outside cuBLAS's int range");
  return static_cast<int>(v);
}

}  // namespace

cudaStream_t stream() {
  // A function-local static: created once, thread-safe; a throw leaves it to be retried next call.
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    FC_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

cublasHandle_t cublas_handle() {
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  if (g_handle) return g_handle;
  cudaStream_t s = stream();
  cublasHandle_t h = nullptr;
  FC_CUBLAS_CHECK(cublasCreate(&h));
  try {
    // SetStream resets the workspace to cuBLAS's own pool, so the workspace is set after it. The
    // workspace block is held for the life of the process (it stays counted as in use).
    FC_CUBLAS_CHECK(cublasSetStream(h, s));
    const std::size_t ws = workspace_bytes();
    void* block = device_allocate(ws);
    FC_CUBLAS_CHECK(cublasSetWorkspace(h, block, ws));
    FC_CUBLAS_CHECK(cublasSetMathMode(h, math_mode(g_tf32.load())));
    g_workspace = block;
    g_workspace_bytes = ws;
  } catch (...) {
    cublasDestroy(h);
    throw;
  }
  g_handle = h;
  return g_handle;
}

void* cublas_workspace(std::size_t* bytes) {
  (void)cublas_handle();
  *bytes = g_workspace_bytes;
  return g_workspace;
}

void set_tf32(bool on) {
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  g_tf32.store(on);
  // Callers of cublasSgemm get TF32 through the math mode; gemm() passes the compute type itself.
  if (g_handle) FC_CUBLAS_CHECK(cublasSetMathMode(g_handle, math_mode(on)));
}

bool tf32() { return g_tf32.load(); }

cublasComputeType_t gemm_compute_type() {
  return tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// cuBLAS is column-major. A row-major matrix with row stride ld, read column-major with the same
// ld, is its transpose; so the row-major C = op(A) op(B) is computed as the column-major
// C^T = op(B)^T op(A)^T: swap the operands (B first), swap m and n, keep each transpose flag.
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc) {
  if (m == 0 || n == 0) return;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  FC_CUBLAS_CHECK(cublasGemmEx(cublas_handle(), op_b, op_a, as_int(n, "n"), as_int(m, "m"),
                               as_int(k, "k"), &alpha, b, CUDA_R_32F, as_int(ldb, "ldb"), a,
                               CUDA_R_32F, as_int(lda, "lda"), &beta, c, CUDA_R_32F,
                               as_int(ldc, "ldc"), gemm_compute_type(), CUBLAS_GEMM_DEFAULT));
}

}  // namespace fastconv::cuda
