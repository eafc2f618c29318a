#include "cuda/runtime.h"

#include "fastconv/text.h"

namespace fastconv::cuda {

void throw_cuda(cudaError_t err, const char* call, const char* file, int line) {
  throw CudaError(text::cat(cudaGetErrorName(err), ": ", cudaGetErrorString(err), " (in ", call,
                            " at ", file, ":", line, ")"));
}

void throw_cublas(cublasStatus_t st, const char* call, const char* file, int line) {
  throw CudaError(text::cat(cublasGetStatusName(st), ": ", cublasGetStatusString(st), " (in ",
                            call, " at ", file, ":", line, ")"));
}

DeviceCount device_count() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls report their own
    return {0, std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err)};
  }
  if (n == 0) return {0, "the CUDA driver reports no device"};
  return {n, ""};
}

int cublas_runtime_version() {
  // cublasGetProperty needs no device, so it answers on a machine without a driver too.
  int major = 0, minor = 0, patch = 0;
  FC_CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &major));
  FC_CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &minor));
  FC_CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &patch));
  return major * 10000 + minor * 100 + patch;
}

}  // namespace fastconv::cuda
