// fastconv._cuda.DeviceArray and the functions that make one: from numpy, empty/zeros, and the
// zero-copy exchanges with other GPU libraries (__cuda_array_interface__ v3 here, DLPack in
// cuda_dlpack.cpp).
// Also the allocator statistics and the TF32 switch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/context.h"
#include "cuda/deferred_checks.h"
#include "cuda/device_array.h"
#include "cuda/fill.h"
#include "cuda/lt_gemm.h"
#include "cuda/runtime.h"
#include "fastconv/checked.h"
#include "fastconv/text.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/cuda_dlpack.h"
#include "python/dlpack.h"

namespace py = pybind11;

namespace fastconv::bind {
namespace {

using cuda::DeviceArray;
namespace dl = fastconv::dlpack;

// ---- dtypes and shapes -------------------------------------------------------------------------

// The fastconv dtype of a numpy dtype, or a TypeError naming the argument.
DType cdtype_of(const py::dtype& dt, const char* name) {
  if (const std::optional<DType> d = fastconv_dtype(dt)) return *d;
  throw py::type_error(std::string(name) + " must be float32, float64 or int64; got " +
                       py::str(py::handle(reinterpret_cast<PyObject*>(dt.ptr()))).cast<std::string>());
}

DType array_dtype_arg(py::handle obj, const char* name) {
  const std::optional<py::dtype> dt = numpy_dtype_of(obj);
  if (!dt)
    throw py::type_error(std::string(name) + " must be a numpy dtype or its name; got " +
                         py::repr(obj).cast<std::string>());
  return cdtype_of(*dt, name);
}

py::dtype numpy_dtype(DType dt) {
  switch (dt) {
    case DType::f32: return py::dtype::of<float>();
    case DType::f64: return py::dtype::of<double>();
    case DType::i64: return py::dtype::of<std::int64_t>();
  }
  throw std::logic_error("unknown dtype");
}

const char* typestr(DType dt) {  // __array_interface__ spelling, little-endian (CUDA hosts are)
  switch (dt) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i64: return "<i8";
  }
  return "";
}


// A DeviceArray's shape: an int or a sequence of ints, each below 2**58; -1 (once) is inferred
// from `infer_total` when that is >= 0. Not args.h's shape_arg (an op's shape, in numpy's
// limits): a DeviceArray has its own, and reshape's -1.
std::vector<index_t> array_shape_arg(py::handle obj, const char* name,
                                     index_t infer_total = -1) {
  const char* expected = infer_total >= 0 ? " must be an int or a sequence of ints (one may be -1); got "
                                          : " must be an int or a sequence of ints; got ";
  std::vector<index_t> shape;
  auto item = [&](py::handle v) {
    if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr()))
      throw py::type_error(std::string(name) + expected + short_repr(obj));
    const std::optional<index_t> d = int64_of(v);
    if (!d)
      throw py::value_error(std::string(name) + " must hold sizes below 2**58; got " +
                            short_repr(obj));
    shape.push_back(*d);
  };
  if (PyIndex_Check(obj.ptr()) && !PyBool_Check(obj.ptr())) {
    item(obj);
  } else if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj) &&
             !py::isinstance<py::bytes>(obj)) {
    auto seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() > kMaxDims)
      throw py::value_error(text::cat(name, " must have at most ", kMaxDims, " dimensions; got ",
                                      seq.size()));
    for (py::handle v : seq) item(v);
  } else {
    throw py::type_error(std::string(name) + expected + type_name(obj));
  }
  int inferred = -1;
  index_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && infer_total >= 0 && inferred < 0) {
      inferred = static_cast<int>(i);
    } else if (shape[i] == -1 && infer_total >= 0) {
      throw py::value_error(std::string(name) + " must have at most one -1 (inferred) size; got " +
                            short_repr(obj));
    } else if (shape[i] < 0) {
      throw py::value_error(std::string(name) + " must hold non-negative sizes; got " +
                            short_repr(obj));
    } else if (!try_mul(known, shape[i], &known) || known > kMaxArrayElements) {
      throw py::value_error(std::string(name) + " must have at most 2**58 elements; got " +
                            short_repr(obj));
    }
  }
  if (infer_total >= 0) {
    const bool fits = inferred >= 0 ? known != 0 && infer_total % known == 0 : known == infer_total;
    if (!fits)
      throw py::value_error(text::cat(name, " must have ", infer_total,
                                      " elements (the array's size); got ", short_repr(obj)));
    if (inferred >= 0) shape[static_cast<std::size_t>(inferred)] = infer_total / known;
  }
  return shape;
}

py::tuple shape_tuple(const std::vector<index_t>& shape) {
  py::tuple t(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) t[i] = py::int_(shape[i]);
  return t;
}

// ---- numpy ---------------------------------------------------------------------------------------

DeviceArray from_numpy(py::handle obj) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("array must be a numpy array; got " + type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const DType dt = cdtype_of(a.dtype(), "array");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error("array must be C-contiguous (np.ascontiguousarray makes it so); got "
                          "a strided view of shape " + text::tuple_str(std::vector<py::ssize_t>(
                              a.shape(), a.shape() + a.ndim())));
  std::vector<index_t> shape(a.shape(), a.shape() + a.ndim());
  DeviceArray d(std::move(shape), dt);
  {
    py::gil_scoped_release nogil;
    d.copy_from_host(a.data(), static_cast<std::size_t>(a.nbytes()));
  }
  return d;
}

py::array to_numpy(const DeviceArray& d) {
  py::array out(numpy_dtype(d.dtype()), std::vector<py::ssize_t>(d.shape().begin(), d.shape().end()));
  {
    py::gil_scoped_release nogil;
    // A data error a kernel found raises here, before the result is read; one wait for both.
    cuda::copy_to_host_checked(out.mutable_data(), d.raw(), d.nbytes());
  }
  return out;
}

DeviceArray zeros(py::handle shape, py::handle dtype) {
  DeviceArray d(array_shape_arg(shape, "shape"), array_dtype_arg(dtype, "dtype"));
  if (d.nbytes() > 0) FC_CUDA_CHECK(cudaMemsetAsync(d.raw(), 0, d.nbytes(), cuda::stream()));
  return d;
}

// ---- __cuda_array_interface__ ---------------------------------------------------------------------

py::dict cuda_array_interface(const DeviceArray& d) {
  py::dict cai;
  cai["shape"] = shape_tuple(d.shape());
  cai["typestr"] = typestr(d.dtype());
  cai["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(d.raw()), false);
  cai["strides"] = py::none();  // C-contiguous
  cai["version"] = 3;
  // Consumers order their reads after our queued work by synchronising with this stream.
  cai["stream"] = handle_of(cuda::stream());
  return cai;
}

// ---- indexing ---------------------------------------------------------------------------------------

// x[i] and x[a:b] along the first axis: views of whole rows, which are contiguous, so no copy and
// no strides. Other steps, tuples and fancy indices would need a copy or strides: refused.
py::object getitem(const DeviceArray& d, py::handle index) {
  py::handle key = index;
  // x[(i,)] is x[i], as in numpy.
  if (PyTuple_Check(key.ptr()) && PyTuple_GET_SIZE(key.ptr()) == 1)
    key = PyTuple_GET_ITEM(key.ptr(), 0);
  // numpy arrays have __index__ too (for 0-d ones): an array of indices is fancy indexing.
  const bool is_array = py::isinstance<DeviceArray>(key) ||
                        (py::isinstance<py::array>(key) && py::reinterpret_borrow<py::array>(key).ndim() != 0);
  const bool is_int = PyIndex_Check(key.ptr()) && !PyBool_Check(key.ptr()) && !is_array &&
                      !py::isinstance(key, py::module_::import("numpy").attr("bool_"));
  if (!is_int && !PySlice_Check(key.ptr()))
    throw py::type_error("index must be an int or a slice along the first axis (step 1); got " +
                         type_name(index) + " " + short_repr(index));
  if (d.ndim() == 0)
    throw py::type_error("index must not be given: a 0-d DeviceArray has no axis to index; got " +
                         short_repr(index));
  const index_t n = d.dim(0);
  if (is_int) {
    const std::optional<index_t> i = int64_of(key);
    // IndexError, as numpy's: it also ends the iteration protocol's loop over x[0], x[1], ...
    if (!i || *i < -n || *i >= n)
      throw py::index_error(text::cat("index must be in [", -n, ", ", n,
                                      ") for axis 0 of shape ", text::tuple_str(d.shape()),
                                      "; got ", short_repr(key)));
    return py::cast(d.row(*i < 0 ? *i + n : *i));
  }
  Py_ssize_t start = 0, stop = 0, step = 0;
  if (PySlice_Unpack(key.ptr(), &start, &stop, &step) < 0) {
    PyErr_Clear();
    throw py::type_error("index must be a slice of ints or None; got " + short_repr(key));
  }
  if (step != 1)
    throw py::value_error(text::cat("index must be a slice with step 1 (a view of whole rows); "
                                    "got step ", static_cast<index_t>(step)));
  // Clamps start and stop to [0, n] as Python's slicing does (n fits: it came from a shape).
  PySlice_AdjustIndices(static_cast<Py_ssize_t>(n), &start, &stop, step);
  if (stop < start) stop = start;
  return py::cast(d.rows(start, stop));
}

// ---- the rest ---------------------------------------------------------------------------------------

std::string repr(const DeviceArray& d) {
  std::vector<index_t> dims;
  for (int i = 0; i < d.ndim(); ++i) dims.push_back(d.dim(i));
  return text::cat("DeviceArray(shape=", text::tuple_str(dims), ", dtype=",
                   dtype_name(d.dtype()), ")");
}

py::dict stats_dict() {
  const cuda::AllocatorStats st = cuda::allocator_stats();
  py::dict out;
  out["bytes_in_use"] = st.bytes_in_use;
  out["bytes_cached"] = st.bytes_cached;
  out["peak_bytes_in_use"] = st.peak_bytes_in_use;
  out["malloc_calls"] = st.malloc_calls;
  out["free_calls"] = st.free_calls;
  out["allocations"] = st.allocations;
  out["cache_hits"] = st.cache_hits;
  out["bytes_in_graph_pools"] = st.bytes_in_graph_pools;
  return out;
}

// Test hook for cuda::gemm's row-major convention: c = alpha * op(a) @ op(b) + beta * c, in place.
void gemm_hook(bool trans_a, bool trans_b, float alpha, const DeviceArray& a, const DeviceArray& b,
               float beta, DeviceArray& c) {
  const DeviceArray* args[] = {&a, &b, &c};
  const char* names[] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i)
    if (args[i]->dtype() != DType::f32 || args[i]->ndim() != 2)
      throw py::type_error(std::string(names[i]) + " must be a 2-d float32 DeviceArray");
  const index_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
  const index_t kb = trans_b ? b.dim(1) : b.dim(0), n = trans_b ? b.dim(0) : b.dim(1);
  if (kb != k) throw py::value_error("b's inner size must equal a's");
  if (c.dim(0) != m || c.dim(1) != n) throw py::value_error("c must be (m, n)");
  cuda::gemm(trans_a, trans_b, m, n, k, alpha, a.data<float>(), a.dim(1), b.data<float>(),
             b.dim(1), beta, c.data<float>(), c.dim(1));
}

}  // namespace

void bind_device_array(py::module_& m) {
  py::class_<DeviceArray>(m, "DeviceArray",
                          "A C-contiguous array in GPU memory (float32, float64 or int64). Make one "
                          "with from_numpy, empty, zeros or from_dlpack; .to_numpy() copies it back.")
      .def_property_readonly("shape", [](const DeviceArray& d) { return shape_tuple(d.shape()); })
      .def_property_readonly("dtype", [](const DeviceArray& d) { return numpy_dtype(d.dtype()); })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("ndim", &DeviceArray::ndim)
      .def_property_readonly("nbytes", &DeviceArray::nbytes)
      .def_property_readonly("ptr", [](const DeviceArray& d) {
        return reinterpret_cast<std::uintptr_t>(d.raw());
      }, "The device address (0 for an empty array).")
      .def("to_numpy", &to_numpy, "Copy to a new numpy array (waits for queued work).")
      .def("reshape", [](const DeviceArray& d, py::args args) {
        py::handle spec = args.size() == 1 ? args[0] : py::handle(args);
        return d.reshaped(array_shape_arg(spec, "shape", d.size()));
      }, "The same memory with another shape of equal size (one -1 is inferred); no copy.")
      .def("__getitem__", &getitem, py::arg("index"),
           "x[i] (the (ndim-1)-D row i) or x[a:b] (rows a to b): a view of the same memory, no "
           "copy, that keeps it alive. Only the first axis, and only step 1.")
      .def("fill", [](DeviceArray& d, py::handle value) {
        if (d.dtype() != DType::f32)
          throw py::type_error(std::string("fill needs a float32 array; got dtype ") +
                               dtype_name(d.dtype()));
        const double v64 = real_arg(value, "value");
        if (!(std::fabs(v64) <= std::numeric_limits<float>::max()))  // not silently inf
          throw py::value_error(text::cat("value must fit in float32 (|value| <= ",
                                          double(std::numeric_limits<float>::max()), "); got ",
                                          v64));
        const float v = static_cast<float>(v64);
        cuda::fill(d.data<float>(), d.size(), v);
      }, py::arg("value"), "Set every element of a float32 array to value (in place, async).")
      .def("__len__", [](const DeviceArray& d) {
        if (d.ndim() == 0) throw py::type_error("len() of unsized object");  // numpy's words
        return d.dim(0);
      })
      .def("__repr__", &repr)
      .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
      .def("__dlpack__", &dlpack_export, py::arg("stream") = py::none(), py::kw_only(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none(),
           "A DLPack capsule viewing this memory (keeps it alive until the consumer is done).")
      .def("__dlpack_device__", [](const DeviceArray&) {
        return py::make_tuple(static_cast<int>(dl::kDLCUDA), current_device());
      });

  m.def("from_numpy", &from_numpy, py::arg("array"),
        "Copy a C-contiguous float32/float64/int64 numpy array to the GPU.");
  m.def("empty", [](py::handle shape, py::handle dtype) {
    return DeviceArray(array_shape_arg(shape, "shape"), array_dtype_arg(dtype, "dtype"));
  }, py::arg("shape"), py::arg("dtype") = "float32", "Uninitialised device memory.");
  m.def("zeros", &zeros, py::arg("shape"), py::arg("dtype") = "float32");
  m.def("from_dlpack", &from_dlpack, py::arg("obj"),
        "View another library's CUDA array (anything with __dlpack__, or a DLPack capsule) "
        "without a copy; the producer's memory stays alive while the DeviceArray does.");
  m.def("allocator_stats", &stats_dict,
        "The caching allocator's counters: bytes_in_use, bytes_cached, peak_bytes_in_use, "
        "malloc_calls, free_calls, allocations, cache_hits, bytes_in_graph_pools (free blocks that "
        "captured graphs keep for their replays).");
  m.def("empty_cache", &cuda::empty_cache, "Return every cached (unused) block to the driver.");
  m.def("set_tf32", [](py::handle on) { cuda::set_tf32(bool_arg(on, "on")); }, py::arg("on"),
        "Use TF32 tensor cores in float32 GEMMs (sm_80+). Needs no device.");
  m.def("tf32", &cuda::tf32);
  m.def("set_gemm_epilogues", [](py::handle on) { cuda::set_gemm_epilogues(bool_arg(on, "on")); },
        py::arg("on"), "Fuse bias, ReLU and bias gradients into cuBLASLt GEMMs where it offers them.");
  m.def("gemm_epilogues", &cuda::gemm_epilogues);
  m.def("_gemm_epilogue_stats", [] {
    const cuda::LtGemmStats st = cuda::lt_gemm_stats();
    py::dict d;
    d["fused"] = st.fused;
    d["refused"] = st.refused;
    return d;
  }, "GEMMs run with a fused epilogue through cuBLASLt, and those it had no algorithm for.");
  m.def("_gemm", &gemm_hook, py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"),
        py::arg("a"), py::arg("b"), py::arg("beta"), py::arg("c"),
        "Test hook: c = alpha * op(a) @ op(b) + beta * c through cuda::gemm (row-major).");
  m.def("stream_handle", [] { return handle_of(cuda::stream()); },
        "The integer handle of the one stream fastconv queues all its work on.");
}

}  // namespace fastconv::bind
