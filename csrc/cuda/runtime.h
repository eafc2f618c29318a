// The CUDA runtime and cuBLAS seen from fastconv: checked calls, device queries and the cuBLAS
// handle (device memory: allocator.h and device_array.h). Every failure becomes a CudaError
// carrying the runtime's own error text.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace fastconv::cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_cuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas(cublasStatus_t st, const char* call, const char* file, int line);

#define FC_CUDA_CHECK(call)                                                       \
  do {                                                                            \
    cudaError_t fc_err_ = (call);                                                 \
    if (fc_err_ != cudaSuccess) ::fastconv::cuda::throw_cuda(fc_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define FC_CUBLAS_CHECK(call)                                                      \
  do {                                                                             \
    cublasStatus_t fc_st_ = (call);                                                \
    if (fc_st_ != CUBLAS_STATUS_SUCCESS)                                           \
      ::fastconv::cuda::throw_cublas(fc_st_, #call, __FILE__, __LINE__);           \
  } while (0)

// cudaGetDeviceCount, with the failure (no driver, no device) as a sentence instead of a throw.
struct DeviceCount {
  int count;
  std::string reason;  // empty when count > 0
};
DeviceCount device_count();

// One cuBLAS handle for the process, created on first use (which needs a device): bound to the
// fastconv stream, with its workspace from the caching allocator (context.h/.cpp).
cublasHandle_t cublas_handle();
int cublas_runtime_version();

}  // namespace fastconv::cuda
