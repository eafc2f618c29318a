// fastconv._cuda.DeviceArray and the functions that make one: from numpy, empty/zeros, and the
// zero-copy exchanges with other GPU libraries (__cuda_array_interface__ v3, DLPack both ways).
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
#include "cuda/device_array.h"
#include "cuda/runtime.h"
#include "fastconv/checked.h"
#include "fastconv/text.h"
#include "python/checks.h"
#include "python/cuda_bindings.h"
#include "python/dlpack.h"

namespace py = pybind11;

namespace fastconv::bind {
namespace {

using cuda::DeviceArray;
using CDType = cuda::DType;
namespace dl = fastconv::dlpack;

// ---- dtypes and shapes -------------------------------------------------------------------------

// Hosts with CUDA GPUs (x86-64, aarch64) are little-endian: native order is '=' or '<'.
bool native_order(char byteorder) {
  return byteorder == '=' || byteorder == '|' || byteorder == '<';
}

// The fastconv dtype of a numpy dtype, or a TypeError naming the argument.
CDType cdtype_of(const py::dtype& dt, const char* name) {
  if (native_order(dt.byteorder())) {
    if (dt.kind() == 'f' && dt.itemsize() == 4) return CDType::f32;
    if (dt.kind() == 'f' && dt.itemsize() == 8) return CDType::f64;
    if (dt.kind() == 'i' && dt.itemsize() == 8) return CDType::i64;
  }
  throw py::type_error(std::string(name) + " must be float32, float64 or int64; got " +
                       py::str(py::handle(reinterpret_cast<PyObject*>(dt.ptr()))).cast<std::string>());
}

CDType dtype_arg(py::handle obj, const char* name) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    throw py::type_error(std::string(name) + " must be a numpy dtype or its name; got " +
                         py::repr(obj).cast<std::string>());
  }
  return cdtype_of(dt, name);
}

py::dtype numpy_dtype(CDType dt) {
  switch (dt) {
    case CDType::f32: return py::dtype::of<float>();
    case CDType::f64: return py::dtype::of<double>();
    case CDType::i64: return py::dtype::of<std::int64_t>();
  }
  throw std::logic_error("unknown dtype");
}

const char* typestr(CDType dt) {  // __array_interface__ spelling, little-endian (CUDA hosts are)
  switch (dt) {
    case CDType::f32: return "<f4";
    case CDType::f64: return "<f8";
    case CDType::i64: return "<i8";
  }
  return "";
}

// repr(obj), cut short: a message quotes what it got, not a whole list.
std::string short_repr(py::handle obj) {
  std::string r = py::repr(obj).cast<std::string>();
  return r.size() <= 80 ? r : r.substr(0, 77) + "...";
}

// An int (not a bool) that fits in 64 bits, as a Python int of any size may not.
std::optional<index_t> int64_of(py::handle obj) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr())) return std::nullopt;
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0) return std::nullopt;
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<index_t>(v);
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

constexpr std::size_t kMaxDims = 64;  // numpy's limit
constexpr index_t kMaxElements = index_t(1) << 58;

// An int or a sequence of ints; -1 (once) is inferred from `infer_total` when that is >= 0.
std::vector<index_t> shape_arg(py::handle obj, const char* name, index_t infer_total = -1) {
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
    } else if (!try_mul(known, shape[i], &known) || known > kMaxElements) {
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

std::uintptr_t handle_of(cudaStream_t s) { return reinterpret_cast<std::uintptr_t>(s); }

int current_device() {
  int d = 0;
  FC_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

// ---- numpy ---------------------------------------------------------------------------------------

DeviceArray from_numpy(py::handle obj) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("array must be a numpy array; got " + type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const CDType dt = cdtype_of(a.dtype(), "array");
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
    d.copy_to_host(out.mutable_data(), d.nbytes());
  }
  return out;
}

DeviceArray zeros(py::handle shape, py::handle dtype) {
  DeviceArray d(shape_arg(shape, "shape"), dtype_arg(dtype, "dtype"));
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

// ---- DLPack export ----------------------------------------------------------------------------------

// What a capsule we hand out owns: a DeviceArray (its share of the storage) and the shape and
// strides arrays the DLTensor points into.
//
// When the consumer releases it, the block may go back to our cache and be reused by work on our
// stream while the consumer's last kernels on its own stream still read it. Where the consumer
// named the legacy or per-thread default stream (handles that are always valid; torch's default),
// the release makes our stream wait for everything queued there so far. A consumer on a stream of
// its own must synchronise before it drops the tensor (the stream may be gone by then).
struct ExportCtx {
  DeviceArray array;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;
  cudaStream_t consumer = nullptr;
  bool fence_on_release = false;

  explicit ExportCtx(DeviceArray a) : array(std::move(a)) {}
  ~ExportCtx() {
    if (!fence_on_release || array.nbytes() == 0) return;
    // Best effort, never throwing: at process exit the runtime may already be gone.
    cudaEvent_t ev = nullptr;
    if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess) {
      if (cudaEventRecord(ev, consumer) == cudaSuccess) cudaStreamWaitEvent(cuda::stream(), ev, 0);
      cudaEventDestroy(ev);
    }
    cudaGetLastError();
  }
};

dl::DLDataType dl_dtype(CDType dt) {
  switch (dt) {
    case CDType::f32: return {dl::kDLFloat, 32, 1};
    case CDType::f64: return {dl::kDLFloat, 64, 1};
    case CDType::i64: return {dl::kDLInt, 64, 1};
  }
  return {};
}

dl::DLTensor describe(ExportCtx& ctx, int device) {
  const std::size_t nd = ctx.shape.size();
  ctx.strides.assign(nd, 1);
  for (std::size_t i = nd; i-- > 1;) ctx.strides[i - 1] = ctx.strides[i] * ctx.shape[i];
  dl::DLTensor t{};
  t.data = ctx.array.raw();
  t.device = {dl::kDLCUDA, device};
  t.ndim = static_cast<std::int32_t>(nd);
  t.dtype = dl_dtype(ctx.array.dtype());
  t.shape = nd ? ctx.shape.data() : nullptr;
  t.strides = nd ? ctx.strides.data() : nullptr;
  t.byte_offset = 0;
  return t;
}

// Runs when a capsule dies: if no consumer took it (the name is unchanged), we still own it.
template <typename Managed>
void capsule_destructor(PyObject* capsule, const char* name) {
  if (!PyCapsule_IsValid(capsule, name)) return;  // consumed: the consumer calls the deleter
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (m && m->deleter) m->deleter(m);
}

// The DLPack `stream` argument: the consumer's stream, or nullopt-like {false} for -1 (no sync).
struct ConsumerStream {
  bool sync;
  cudaStream_t stream;
};

ConsumerStream consumer_stream(py::handle stream_obj) {
  if (stream_obj.is_none()) return {true, cudaStreamLegacy};  // the spec: the legacy default
  const auto v = index_arg(stream_obj, "stream");
  if (v == -1) return {false, nullptr};  // the consumer asks for no synchronisation
  if (v == 0 || v < -1)
    throw py::value_error(text::cat(
        "stream must be None, -1 (no sync), 1 (legacy default), 2 (per-thread) or a stream "
        "handle; got ", v, v == 0 ? " (ambiguous for CUDA)" : ""));
  if (v == 1) return {true, cudaStreamLegacy};
  if (v == 2) return {true, cudaStreamPerThread};
  return {true, reinterpret_cast<cudaStream_t>(v)};
}

// Makes work queued so far on our stream visible to `consumer` (the DLPack stream protocol).
void order_for_consumer(cudaStream_t consumer) {
  cudaStream_t ours = cuda::stream();
  if (consumer == ours) return;
  cudaEvent_t ev = nullptr;
  FC_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  cudaError_t err = cudaEventRecord(ev, ours);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(consumer, ev, 0);
  cudaEventDestroy(ev);  // released once the wait has happened
  FC_CUDA_CHECK(err);
}

py::object dlpack_export(const DeviceArray& d, py::handle stream_obj, py::handle max_version,
                         py::handle dl_device, py::handle copy) {
  if (!copy.is_none() && bool_arg(copy, "copy"))
    throw py::buffer_error("copy must be None or False (DeviceArray.__dlpack__ exports views, "
                           "not copies); got True");
  const ConsumerStream consumer = consumer_stream(stream_obj);
  bool versioned = false;
  if (!max_version.is_none())
    versioned = int_pair(max_version, "max_version", "a (major, minor) pair of ints").first >= 1;
  const int device = current_device();  // after the checks that need no device
  if (!dl_device.is_none()) {
    const auto dev = int_pair(dl_device, "dl_device", "a (device_type, device_id) pair of ints");
    if (dev.first != dl::kDLCUDA || dev.second != device)
      throw py::buffer_error(text::cat("dl_device must be (", int(dl::kDLCUDA), ", ", device,
                                       ") (this DeviceArray's CUDA device); got ",
                                       short_repr(dl_device)));
  }
  if (consumer.sync && d.nbytes() > 0) order_for_consumer(consumer.stream);

  auto ctx = std::make_unique<ExportCtx>(d);
  ctx->shape.assign(d.shape().begin(), d.shape().end());
  ctx->consumer = consumer.stream;
  ctx->fence_on_release = consumer.sync && (consumer.stream == cudaStreamLegacy ||
                                            consumer.stream == cudaStreamPerThread);
  if (versioned) {
    auto m = std::make_unique<dl::DLManagedTensorVersioned>();
    m->version = {1, 0};
    m->flags = 0;
    m->dl_tensor = describe(*ctx, device);
    m->deleter = [](dl::DLManagedTensorVersioned* self) {
      delete static_cast<ExportCtx*>(self->manager_ctx);
      delete self;
    };
    m->manager_ctx = ctx.get();
    PyObject* cap = PyCapsule_New(m.get(), "dltensor_versioned", [](PyObject* c) {
      capsule_destructor<dl::DLManagedTensorVersioned>(c, "dltensor_versioned");
    });
    if (!cap) throw py::error_already_set();
    ctx.release();
    m.release();
    return py::reinterpret_steal<py::object>(cap);
  }
  auto m = std::make_unique<dl::DLManagedTensor>();
  m->dl_tensor = describe(*ctx, device);
  m->deleter = [](dl::DLManagedTensor* self) {
    delete static_cast<ExportCtx*>(self->manager_ctx);
    delete self;
  };
  m->manager_ctx = ctx.get();
  PyObject* cap = PyCapsule_New(m.get(), "dltensor", [](PyObject* c) {
    capsule_destructor<dl::DLManagedTensor>(c, "dltensor");
  });
  if (!cap) throw py::error_already_set();
  ctx.release();
  m.release();
  return py::reinterpret_steal<py::object>(cap);
}

// ---- DLPack import ------------------------------------------------------------------------------------

bool python_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// Calls the producer's deleter when the last DeviceArray viewing its memory dies, with the GIL
// (a producer's deleter may touch Python objects; we may be on a thread without it). During
// interpreter shutdown the memory is left to the process exit instead.
template <typename Managed>
std::shared_ptr<void> keep_alive(Managed* m) {
  return std::shared_ptr<void>(m, [](void* p) {
    auto* mt = static_cast<Managed*>(p);
    if (!mt->deleter || !Py_IsInitialized() || python_finalizing()) return;
    PyGILState_STATE g = PyGILState_Ensure();
    mt->deleter(mt);
    PyGILState_Release(g);
  });
}

CDType cdtype_of_dl(const dl::DLDataType& t) {
  if (t.lanes == 1 && t.code == dl::kDLFloat && t.bits == 32) return CDType::f32;
  if (t.lanes == 1 && t.code == dl::kDLFloat && t.bits == 64) return CDType::f64;
  if (t.lanes == 1 && t.code == dl::kDLInt && t.bits == 64) return CDType::i64;
  throw py::type_error(text::cat("obj must have DLPack dtype float32, float64 or int64; got (code ",
                                 int(t.code), ", bits ", int(t.bits), ", lanes ", int(t.lanes),
                                 ")"));
}

// Checks a producer's tensor and returns its shape; throws (leaving the capsule unconsumed).
// The structure first, so that a malformed capsule is refused even where no device is usable.
std::vector<index_t> checked_shape(const dl::DLTensor& t, CDType* dtype) {
  if (t.device.device_type != dl::kDLCUDA && t.device.device_type != dl::kDLCUDAManaged)
    throw py::value_error(text::cat("obj must live on a CUDA device (use from_numpy for host "
                                    "arrays); got DLPack device type ", int(t.device.device_type)));
  *dtype = cdtype_of_dl(t.dtype);
  // A producer's tensor is read through raw pointers: every field is checked before use.
  if (t.ndim < 0 || t.ndim > static_cast<int>(kMaxDims))
    throw py::value_error(text::cat("obj must have 0 to ", kMaxDims, " dimensions; got ndim ",
                                    t.ndim));
  if (t.ndim > 0 && !t.shape)
    throw py::value_error(text::cat("obj must describe its shape; got ndim ", t.ndim,
                                    " and no shape array"));
  std::vector<index_t> shape(t.shape, t.shape + t.ndim);
  index_t total = 1;
  for (index_t s : shape) {
    if (s < 0)
      throw py::value_error("obj must have non-negative sizes; got shape " + text::tuple_str(shape));
    if (!try_mul(total, s, &total) || total > kMaxElements)
      throw py::value_error("obj must have at most 2**58 elements; got shape " +
                            text::tuple_str(shape));
  }
  if (total > 0 && !t.data)
    throw py::value_error("obj must point at its data; got a null pointer for shape " +
                          text::tuple_str(shape));
  if (t.strides && total > 0) {
    index_t expect = 1;  // <= total: no overflow
    for (int i = t.ndim; i-- > 0;) {
      if (shape[static_cast<std::size_t>(i)] != 1 && t.strides[i] != expect)
        throw py::value_error("obj must be C-contiguous (call .contiguous() on a torch tensor); "
                              "got strides " + text::tuple_str(std::vector<index_t>(
                                  t.strides, t.strides + t.ndim)) + " for shape " +
                              text::tuple_str(shape));
      expect *= shape[static_cast<std::size_t>(i)];
    }
  }
  // Last: the only check that asks the driver.
  const int device = current_device();
  if (t.device.device_id != device)
    throw py::value_error(text::cat("obj must live on CUDA device ", device,
                                    " (fastconv's); got device ", t.device.device_id));
  return shape;
}

template <typename Managed>
DeviceArray import_managed(py::capsule& cap, const char* name, const char* used_name) {
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(cap.ptr(), name));
  if (!m) {
    PyErr_Clear();
    throw py::value_error(std::string("obj must be a DLPack capsule holding a tensor; got a '") +
                          name + "' capsule with a null pointer");
  }
  if constexpr (std::is_same_v<Managed, dl::DLManagedTensorVersioned>) {
    if (m->version.major != 1)
      throw py::value_error(text::cat("obj must use DLPack 1.x; got version ", m->version.major,
                                      ".", m->version.minor));
    if (m->flags & dl::kFlagReadOnly)
      throw py::value_error("obj must be writable (fastconv kernels may write their arrays); got "
                            "a read-only DLPack tensor");
  }
  CDType dt;
  std::vector<index_t> shape = checked_shape(m->dl_tensor, &dt);
  void* data = static_cast<char*>(m->dl_tensor.data) + m->dl_tensor.byte_offset;
  // From here we own the tensor: the rename tells the capsule's destructor to leave it alone.
  if (PyCapsule_SetName(cap.ptr(), used_name) != 0) throw py::error_already_set();
  return DeviceArray::borrow(data, std::move(shape), dt, keep_alive(m));
}

std::string capsule_name(py::handle cap) {
  const char* n = PyCapsule_GetName(cap.ptr());
  if (!n) PyErr_Clear();
  return n ? n : "";
}

DeviceArray from_dlpack(py::handle obj) {
  if (py::isinstance<DeviceArray>(obj)) return obj.cast<DeviceArray>();  // a view, no copy
  py::object cap_obj;
  if (PyCapsule_CheckExact(obj.ptr())) {
    cap_obj = py::reinterpret_borrow<py::object>(obj);
  } else {
    if (!py::hasattr(obj, "__dlpack__"))
      throw py::type_error("obj must support DLPack (__dlpack__), e.g. a torch CUDA tensor; got " +
                           type_name(obj));
    if (py::hasattr(obj, "__dlpack_device__")) {
      const index_t type = int_pair(obj.attr("__dlpack_device__")(), "obj.__dlpack_device__()",
                                    "a (device_type, device_id) pair of ints").first;
      if (type != dl::kDLCUDA && type != dl::kDLCUDAManaged)
        throw py::value_error(text::cat("obj must live on a CUDA device (use from_numpy for host "
                                        "arrays); got DLPack device type ", type));
    }
    // The producer orders its pending writes before our later work on this stream.
    cap_obj = obj.attr("__dlpack__")(py::arg("stream") = handle_of(cuda::stream()));
  }
  if (!PyCapsule_CheckExact(cap_obj.ptr()))
    throw py::type_error("obj.__dlpack__() must return a DLPack capsule; got " +
                         type_name(cap_obj));
  auto cap = py::reinterpret_borrow<py::capsule>(cap_obj);
  if (PyCapsule_IsValid(cap.ptr(), "dltensor"))
    return import_managed<dl::DLManagedTensor>(cap, "dltensor", "used_dltensor");
  if (PyCapsule_IsValid(cap.ptr(), "dltensor_versioned"))
    return import_managed<dl::DLManagedTensorVersioned>(cap, "dltensor_versioned",
                                                        "used_dltensor_versioned");
  throw py::value_error("obj must be an unconsumed 'dltensor' or 'dltensor_versioned' capsule; "
                        "got one named '" + capsule_name(cap_obj) + "' (already used?)");
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
                   cuda::dtype_name(d.dtype()), ")");
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
  return out;
}

// Test hook for cuda::gemm's row-major convention: c = alpha * op(a) @ op(b) + beta * c, in place.
void gemm_hook(bool trans_a, bool trans_b, float alpha, const DeviceArray& a, const DeviceArray& b,
               float beta, DeviceArray& c) {
  const DeviceArray* args[] = {&a, &b, &c};
  const char* names[] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i)
    if (args[i]->dtype() != CDType::f32 || args[i]->ndim() != 2)
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
        return d.reshaped(shape_arg(spec, "shape", d.size()));
      }, "The same memory with another shape of equal size (one -1 is inferred); no copy.")
      .def("__getitem__", &getitem, py::arg("index"),
           "x[i] (the (ndim-1)-D row i) or x[a:b] (rows a to b): a view of the same memory, no "
           "copy, that keeps it alive. Only the first axis, and only step 1.")
      .def("fill", [](DeviceArray& d, py::handle value) {
        if (d.dtype() != CDType::f32)
          throw py::type_error(std::string("fill needs a float32 array; got dtype ") +
                               cuda::dtype_name(d.dtype()));
        const double v64 = real_arg(value, "value");
        if (!(std::fabs(v64) <= std::numeric_limits<float>::max()))  // not silently inf
          throw py::value_error(text::cat("value must fit in float32 (|value| <= ",
                                          double(std::numeric_limits<float>::max()), "); got ",
                                          v64));
        const float v = static_cast<float>(v64);
        cuda::launch_fill(d.data<float>(), static_cast<std::size_t>(d.size()), v, cuda::stream());
        FC_CUDA_CHECK(cudaGetLastError());
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
    return DeviceArray(shape_arg(shape, "shape"), dtype_arg(dtype, "dtype"));
  }, py::arg("shape"), py::arg("dtype") = "float32", "Uninitialised device memory.");
  m.def("zeros", &zeros, py::arg("shape"), py::arg("dtype") = "float32");
  m.def("from_dlpack", &from_dlpack, py::arg("obj"),
        "View another library's CUDA array (anything with __dlpack__, or a DLPack capsule) "
        "without a copy; the producer's memory stays alive while the DeviceArray does.");
  m.def("allocator_stats", &stats_dict,
        "The caching allocator's counters: bytes_in_use, bytes_cached, peak_bytes_in_use, "
        "malloc_calls, free_calls, allocations, cache_hits.");
  m.def("empty_cache", &cuda::empty_cache, "Return every cached (unused) block to the driver.");
  m.def("set_tf32", [](py::handle on) { cuda::set_tf32(bool_arg(on, "on")); }, py::arg("on"),
        "Use TF32 tensor cores in float32 GEMMs (sm_80+). Needs no device.");
  m.def("tf32", &cuda::tf32);
  m.def("_gemm", &gemm_hook, py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"),
        py::arg("a"), py::arg("b"), py::arg("beta"), py::arg("c"),
        "Test hook: c = alpha * op(a) @ op(b) + beta * c through cuda::gemm (row-major).");
  m.def("stream_handle", [] { return handle_of(cuda::stream()); },
        "The integer handle of the one stream fastconv queues all its work on.");
}

}  // namespace fastconv::bind
