// DLPack both ways for DeviceArray: __dlpack__ (export, versioned 1.x or the unversioned
// capsule, whichever the consumer asks for) and from_dlpack (import, checking every field of the
// producer's tensor before use).
#include "python/cuda_dlpack.h"

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/context.h"
#include "cuda/graph.h"
#include "cuda/runtime.h"
#include "fastconv/checked.h"
#include "fastconv/text.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/dlpack.h"

namespace fastconv::bind {
namespace {

namespace dl = fastconv::dlpack;

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

dl::DLDataType dl_dtype(DType dt) {
  switch (dt) {
    case DType::f32: return {dl::kDLFloat, 32, 1};
    case DType::f64: return {dl::kDLFloat, 64, 1};
    case DType::i64: return {dl::kDLInt, 64, 1};
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

// The capsule for one of DLPack's two managed-tensor structs, named as the spec names it.
template <typename Managed>
constexpr const char* kCapsuleName =
    std::is_same_v<Managed, dl::DLManagedTensorVersioned> ? "dltensor_versioned" : "dltensor";

template <typename Managed>
py::object capsule(std::unique_ptr<ExportCtx> ctx, int device) {
  auto m = std::make_unique<Managed>();
  if constexpr (std::is_same_v<Managed, dl::DLManagedTensorVersioned>) {
    m->version = {1, 0};
    m->flags = 0;
  }
  m->dl_tensor = describe(*ctx, device);
  m->deleter = [](Managed* self) {
    delete static_cast<ExportCtx*>(self->manager_ctx);
    delete self;
  };
  m->manager_ctx = ctx.get();
  PyObject* cap = PyCapsule_New(m.get(), kCapsuleName<Managed>, [](PyObject* c) {
    capsule_destructor<Managed>(c, kCapsuleName<Managed>);
  });
  if (!cap) throw py::error_already_set();
  ctx.release();
  m.release();
  return py::reinterpret_steal<py::object>(cap);
}

}  // namespace

py::object dlpack_export(const DeviceArray& d, py::handle stream_obj, py::handle max_version,
                         py::handle dl_device, py::handle copy) {
  cuda::refuse_in_capture("a DLPack export");  // it orders another stream after ours
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
  return versioned ? capsule<dl::DLManagedTensorVersioned>(std::move(ctx), device)
                   : capsule<dl::DLManagedTensor>(std::move(ctx), device);
}

namespace {

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

DType cdtype_of_dl(const dl::DLDataType& t) {
  if (t.lanes == 1 && t.code == dl::kDLFloat && t.bits == 32) return DType::f32;
  if (t.lanes == 1 && t.code == dl::kDLFloat && t.bits == 64) return DType::f64;
  if (t.lanes == 1 && t.code == dl::kDLInt && t.bits == 64) return DType::i64;
  throw py::type_error(text::cat("obj must have DLPack dtype float32, float64 or int64; got (code ",
                                 int(t.code), ", bits ", int(t.bits), ", lanes ", int(t.lanes),
                                 ")"));
}

// Checks a producer's tensor and returns its shape; throws (leaving the capsule unconsumed).
// The structure first, so that a malformed capsule is refused even where no device is usable.
std::vector<index_t> checked_shape(const dl::DLTensor& t, DType* dtype) {
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
    if (!try_mul(total, s, &total) || total > kMaxArrayElements)
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
  DType dt;
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

}  // namespace

DeviceArray from_dlpack(py::handle obj) {
  if (py::isinstance<DeviceArray>(obj)) return obj.cast<DeviceArray>();  // a view, no copy
  cuda::refuse_in_capture("a DLPack import");
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

}  // namespace fastconv::bind
