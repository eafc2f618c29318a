#include "cuda/device_array.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/allocator.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

index_t element_count(const std::vector<index_t>& shape) {
  index_t n = 1;
  for (index_t d : shape) {
    if (d < 0) throw std::invalid_argument("DeviceArray: negative dimension " + std::to_string(d));
    n *= d;
  }
  return n;
}

void check_copy_size(std::size_t nbytes, std::size_t have) {
  if (nbytes != have)
    throw std::length_error("DeviceArray: host copy of " + std::to_string(nbytes) +
                            " bytes for an array of " + std::to_string(have));
}

}  // namespace

std::size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
  }
  return "?";
}

DeviceArray::DeviceArray(std::vector<index_t> shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype) {
  const std::size_t bytes = static_cast<std::size_t>(element_count(shape_)) * dtype_size(dtype_);
  // Empty arrays hold no block (raw() is nullptr); device_free ignores nullptr.
  storage_ = std::shared_ptr<void>(device_allocate(bytes), [](void* p) { device_free(p); });
}

index_t DeviceArray::size() const { return element_count(shape_); }

DeviceArray DeviceArray::reshaped(std::vector<index_t> shape) const {
  if (element_count(shape) != size())
    throw std::invalid_argument("DeviceArray: cannot reshape " + std::to_string(size()) +
                                " elements to a shape of " + std::to_string(element_count(shape)));
  DeviceArray out;
  out.shape_ = std::move(shape);
  out.dtype_ = dtype_;
  out.storage_ = storage_;
  return out;
}

// The host buffers are pageable, so the async copy is staged by the driver anyway; the sync makes
// the host side safe to use (or free) on return and orders the copy after queued kernels.
void DeviceArray::copy_from_host(const void* src, std::size_t nbytes) {
  check_copy_size(nbytes, this->nbytes());
  if (nbytes == 0) return;
  cudaStream_t s = stream();
  FC_CUDA_CHECK(cudaMemcpyAsync(raw(), src, nbytes, cudaMemcpyHostToDevice, s));
  FC_CUDA_CHECK(cudaStreamSynchronize(s));
}

void DeviceArray::copy_to_host(void* dst, std::size_t nbytes) const {
  check_copy_size(nbytes, this->nbytes());
  if (nbytes == 0) return;
  cudaStream_t s = stream();
  FC_CUDA_CHECK(cudaMemcpyAsync(dst, raw(), nbytes, cudaMemcpyDeviceToHost, s));
  FC_CUDA_CHECK(cudaStreamSynchronize(s));
}

DeviceArray DeviceArray::borrow(void* ptr, std::vector<index_t> shape, DType dtype,
                                std::shared_ptr<void> keep) {
  DeviceArray out;
  (void)element_count(shape);  // rejects negative dimensions
  out.shape_ = std::move(shape);
  out.dtype_ = dtype;
  // Aliasing constructor: get() is ptr, the reference count is keep's.
  out.storage_ = std::shared_ptr<void>(std::move(keep), ptr);
  return out;
}

}  // namespace fastconv::cuda
