// A GPU array: shape, dtype and device memory from the caching allocator. This is the only array
// type the CUDA bindings take and return; kernels below them see raw pointers, as on the CPU.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fastconv/common.h"
#include "fastconv/dtype.h"

namespace fastconv::cuda {

class DeviceArray {
 public:
  // Uninitialised device memory of the given shape (from the caching allocator, on stream()).
  DeviceArray(std::vector<index_t> shape, DType dtype);

  const std::vector<index_t>& shape() const { return shape_; }
  index_t dim(int axis) const { return shape_[static_cast<std::size_t>(axis)]; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  index_t size() const;  // number of elements
  std::size_t nbytes() const { return static_cast<std::size_t>(size()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }

  void* raw() const { return storage_.get(); }
  template <typename T>
  T* data() const {
    return static_cast<T*>(storage_.get());
  }

  // The same memory seen with another shape of equal size (no copy).
  DeviceArray reshaped(std::vector<index_t> shape) const;

  // Rows [begin, end) of the first axis (0 <= begin <= end <= dim(0), the caller checks): a view
  // of the same memory that keeps the parent's storage alive. An empty view points at nothing.
  DeviceArray rows(index_t begin, index_t end) const;
  // Row i of the first axis as an (ndim - 1)-D view (0 <= i < dim(0)).
  DeviceArray row(index_t i) const;

  // Copies `count` elements starting at element `first` to the host (the error paths read one
  // offending value this way); synchronous like copy_to_host.
  void read_elements(index_t first, index_t count, void* dst) const;

  // Host <-> device on stream(), synchronous for the host side (the host buffer is usable after).
  void copy_from_host(const void* src, std::size_t nbytes);
  void copy_to_host(void* dst, std::size_t nbytes) const;

  // Wrap memory owned elsewhere (DLPack / __cuda_array_interface__ imports): `keep` holds the
  // owner alive for as long as any DeviceArray views the memory.
  static DeviceArray borrow(void* ptr, std::vector<index_t> shape, DType dtype,
                            std::shared_ptr<void> keep);

 private:
  DeviceArray() = default;
  std::vector<index_t> shape_;
  DType dtype_ = DType::f32;
  std::shared_ptr<void> storage_;  // frees to the caching allocator (or releases the owner)
};

// The one stream every fastconv launch and copy goes on (created on first use).
cudaStream_t stream();

}  // namespace fastconv::cuda
