// The argument checks and outputs that every CUDA binding (cuda_<op>.cpp) shares: device arrays
// of a dtype and rank (their shapes go on to the shared checks of checks.h and shapes.h), and
// outputs from the caching allocator. Messages are worded as the CPU bindings' are: the GPU
// takes float32 only (float64 stays on the CPU), and a numpy array among device arrays is a
// TypeError, never a silent copy.
//
// The GIL stays held in every CUDA binding: a call only queues kernels on the stream
// (microseconds), so releasing it would cost more than it frees, and the caching allocator then
// never sees two threads at once.
#pragma once
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cuda/device_array.h"
#include "fastconv/common.h"
#include "python/args.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace py = pybind11;

using cuda::DeviceArray;

std::string shape_str(const DeviceArray& a);

// Any DeviceArray: None, numpy arrays (host memory among device arrays) and other objects are
// TypeErrors naming the argument.
DeviceArray& device_arg(py::handle obj, const char* name);
// A float32 device array of the given rank (ndim < 0: any rank); `layout` names the axes.
DeviceArray& float_dev(py::handle obj, const char* name, int ndim, const char* layout);
// An int64 device array of the given rank.
DeviceArray& int64_dev(py::handle obj, const char* name, int ndim, const char* layout);

// Logits z (N, C), float32, both sizes >= 1 (the loss and accuracy_count).
const DeviceArray& logits(py::handle z_obj);
// (N, C) float32 target weights, or (N,) int64 labels: the form is chosen by t's rank.
struct Targets {
  const DeviceArray* t;
  bool is_labels;
};
Targets targets(py::handle t_obj, const DeviceArray& z);

// Outputs: device memory from the caching allocator; in poison mode (tests) NaN, or the lowest
// int64, so that an element a kernel forgets to write fails the comparison.
DeviceArray new_output(std::vector<index_t> shape, DType dt = DType::f32);

inline py::object out(DeviceArray a) { return py::cast(std::move(a)); }

template <typename T>
const T* cp(const DeviceArray& a) {
  return a.data<T>();
}
template <typename T>
T* mp(const DeviceArray& a) {
  return a.data<T>();
}

// ---- Python values, for the DeviceArray methods (cuda_array.cpp, cuda_dlpack.cpp) ---------------

constexpr std::size_t kMaxDims = 64;  // numpy's limit
constexpr index_t kMaxArrayElements = index_t(1) << 58;  // a DeviceArray's limit

// repr(obj), cut short: a message quotes what it got, not a whole list.
std::string short_repr(py::handle obj);
index_t index_arg(py::handle obj, const char* name);
// A pair of ints (DLPack's device and version tuples), or a TypeError naming the argument.
std::pair<index_t, index_t> int_pair(py::handle obj, const char* name, const char* expected);
std::uintptr_t handle_of(cudaStream_t s);
int current_device();

}  // namespace fastconv::bind
