#include "cuda/device_array.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/allocator.h"
#include "cuda/graph.h"
#include "cuda/host_staging.h"
#include "cuda/runtime.h"
#include "fastconv/checked.h"

namespace fastconv::cuda {
namespace {

// The element count, checked: the bindings validate shapes first, so a throw here is a bug
// upstream, reported instead of wrapping around into a small allocation.
index_t element_count(const std::vector<index_t>& shape) {
  index_t n = 1;
  for (index_t d : shape) {
    if (d < 0) throw std::invalid_argument("DeviceArray: negative dimension " + std::to_string(d));
    if (!try_mul(n, d, &n))
      throw std::length_error("DeviceArray: the shape's element count overflows 64 bits");
  }
  return n;
}

std::size_t byte_count(index_t elements, DType dt) {
  std::size_t bytes = 0;
  if (!try_mul(static_cast<std::size_t>(elements), dtype_size(dt), &bytes))
    throw std::length_error("DeviceArray: the byte count overflows 64 bits");
  return bytes;
}

void check_copy_size(std::size_t nbytes, std::size_t have) {
  if (nbytes != have)
    throw std::length_error("DeviceArray: host copy of " + std::to_string(nbytes) +
                            " bytes for an array of " + std::to_string(have));
}

}  // namespace

DeviceArray::DeviceArray(std::vector<index_t> shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype) {
  const std::size_t bytes = byte_count(element_count(shape_), dtype_);
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

DeviceArray DeviceArray::rows(index_t begin, index_t end) const {
  if (shape_.empty() || begin < 0 || end < begin || end > shape_[0])
    throw std::out_of_range("DeviceArray: rows [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") outside the first axis");
  // begin * (row elements) <= size(), which fits: checked anyway, as every size here is.
  index_t skipped = 0;
  if (!try_mul(begin, element_count({shape_.begin() + 1, shape_.end()}), &skipped))
    throw std::length_error("DeviceArray: the view's offset overflows 64 bits");
  const std::size_t offset = byte_count(skipped, dtype_);
  DeviceArray out;
  out.shape_ = shape_;
  out.shape_[0] = end - begin;
  out.dtype_ = dtype_;
  char* base = static_cast<char*>(storage_.get());
  // Aliasing: the view shares the parent's reference count (the block stays alive) but points
  // at its first row; nothing for an empty view, as for any empty array.
  out.storage_ = std::shared_ptr<void>(storage_, out.size() == 0 ? nullptr : base + offset);
  return out;
}

DeviceArray DeviceArray::row(index_t i) const {
  DeviceArray out = rows(i, i + 1);
  out.shape_.erase(out.shape_.begin());
  return out;
}

void DeviceArray::read_elements(index_t first, index_t count, void* dst) const {
  if (first < 0 || count < 0 || count > size() || first > size() - count)
    throw std::out_of_range("DeviceArray: elements [" + std::to_string(first) + ", +" +
                            std::to_string(count) + ") outside an array of " +
                            std::to_string(size()));
  if (count == 0) return;
  refuse_in_capture("a copy to the host");
  const std::size_t itemsize = dtype_size(dtype_);
  cudaStream_t s = stream();
  FC_CUDA_CHECK(cudaMemcpyAsync(dst, static_cast<const char*>(raw()) + itemsize * std::size_t(first),
                                itemsize * std::size_t(count), cudaMemcpyDeviceToHost, s));
  FC_CUDA_CHECK(cudaStreamSynchronize(s));
}

// Small copies go through pinned staging slots and return without waiting (host_staging.h).
// Larger ones come from pageable memory, which the driver may still read after an async copy
// returns: the sync makes the host side safe to change (or free) on return.
void DeviceArray::copy_from_host(const void* src, std::size_t nbytes) {
  check_copy_size(nbytes, this->nbytes());
  if (nbytes == 0) return;
  refuse_in_capture("a copy of host data to the device");
  if (stage_to_device(raw(), src, nbytes)) return;
  cudaStream_t s = stream();
  FC_CUDA_CHECK(cudaMemcpyAsync(raw(), src, nbytes, cudaMemcpyHostToDevice, s));
  FC_CUDA_CHECK(cudaStreamSynchronize(s));
}

void DeviceArray::copy_to_host(void* dst, std::size_t nbytes) const {
  check_copy_size(nbytes, this->nbytes());
  if (nbytes == 0) return;
  refuse_in_capture("a copy to the host");
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
