// The shared checks of the CUDA bindings (cuda_args.h).
#include "python/cuda_args.h"

#include <pybind11/numpy.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cuda/fill.h"
#include "cuda/runtime.h"
#include "python/checks.h"

namespace fastconv::bind {

std::string shape_str(const DeviceArray& a) { return dims_str(a.shape()); }

// Any DeviceArray: None, numpy arrays (host memory among device arrays) and other objects are
// TypeErrors naming the argument.
DeviceArray& device_arg(py::handle obj, const char* name) {
  if (obj.is_none())
    throw py::type_error(std::string(name) + " must be a fastconv device array, got None");
  if (py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) +
                         " must be a fastconv device array (this is a GPU kernel: host and device "
                         "arrays cannot be mixed in one call; move it with "
                         "fastconv.device.to_device(" + name + ")); got a numpy (host) array");
  if (!py::isinstance<DeviceArray>(obj))
    throw py::type_error(std::string(name) + " must be a fastconv device array; got " +
                         type_name(obj));
  return obj.cast<DeviceArray&>();
}

// A float32 device array of the given rank (ndim < 0: any rank).
DeviceArray& float_dev(py::handle obj, const char* name, int ndim, const char* layout) {
  DeviceArray& a = device_arg(obj, name);
  if (a.dtype() == DType::f64)
    throw py::type_error(std::string(name) +
                         " must have dtype float32 (the GPU kernels take float32 only; float64 "
                         "stays on the CPU: use a numpy array there); got float64");
  if (a.dtype() != DType::f32)
    throw py::type_error(std::string(name) + " must have dtype float32; got " +
                         dtype_name(a.dtype()));
  check_rank(a.shape(), name, ndim, layout);
  return a;
}

// An int64 device array of the given rank.
DeviceArray& int64_dev(py::handle obj, const char* name, int ndim, const char* layout) {
  DeviceArray& a = device_arg(obj, name);
  if (a.dtype() != DType::i64)
    throw py::type_error(std::string(name) + " must have dtype int64 on the GPU; got " +
                         dtype_name(a.dtype()));
  check_rank(a.shape(), name, ndim, layout);
  return a;
}

// Outputs: device memory from the caching allocator; in poison mode (tests) NaN, or the lowest
// int64, so that an element a kernel forgets to write fails the comparison.
DeviceArray new_output(std::vector<index_t> shape, DType dt) {
  DeviceArray a(std::move(shape), dt);
  if (poison_outputs()) {
    if (dt == DType::i64)
      cuda::fill(a.data<std::int64_t>(), a.size(), std::numeric_limits<std::int64_t>::lowest());
    else
      cuda::fill(a.data<float>(), a.size(), std::numeric_limits<float>::quiet_NaN());
  }
  return a;
}

const DeviceArray& logits(py::handle z_obj) {
  const DeviceArray& z = float_dev(z_obj, "z", 2, "(N, C)");
  check_logits(z.shape());
  return z;
}

Targets targets(py::handle t_obj, const DeviceArray& z) {
  const DeviceArray& t = device_arg(t_obj, "t");
  if (t.ndim() == 2) {
    float_dev(t_obj, "t", 2, "(N, C)");
    check_shape_like(t.shape(), "t", z.shape(), "z");
    return {&t, false};
  }
  if (t.ndim() != 1)
    throw py::value_error("t must be (N, C) target weights or (N,) integer labels; got shape " +
                          shape_str(t));
  if (t.dtype() != DType::i64)
    throw py::type_error("t must have an integer dtype (int64 on the GPU) for (N,) labels; got " +
                         std::string(dtype_name(t.dtype())));
  check_dim(t.shape(), "t", 0, z.dim(0), "z's batch N");
  return {&t, true};
}

// ---- Python values (the DeviceArray methods) ----------------------------------------------

// repr(obj), cut short: a message quotes what it got, not a whole list.
std::string short_repr(py::handle obj) {
  std::string r = py::repr(obj).cast<std::string>();
  return r.size() <= 80 ? r : r.substr(0, 77) + "...";
}

index_t index_arg(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(std::string(name) + " must be an int; got " + type_name(obj));
  const std::optional<index_t> v = int64_of(obj);
  if (!v)
    throw py::value_error(std::string(name) + " must fit in 64 bits; got " + short_repr(obj));
  return *v;
}

// A pair of ints (DLPack's device and version tuples), or a TypeError naming the argument.
std::pair<index_t, index_t> int_pair(py::handle obj, const char* name, const char* expected) {
  const bool seq = PySequence_Check(obj.ptr()) && !py::isinstance<py::str>(obj) &&
                   PySequence_Size(obj.ptr()) == 2;
  PyErr_Clear();  // PySequence_Size on an object without a length
  std::optional<index_t> a, b;
  if (seq) {
    auto items = py::reinterpret_borrow<py::sequence>(obj);
    a = int64_of(items[0]);
    b = int64_of(items[1]);
  }
  if (!a || !b)
    throw py::type_error(std::string(name) + " must be " + expected + "; got " + short_repr(obj));
  return {*a, *b};
}

std::uintptr_t handle_of(cudaStream_t s) { return reinterpret_cast<std::uintptr_t>(s); }

int current_device() {
  int d = 0;
  FC_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

}  // namespace fastconv::bind
