// fastconv._cuda: the GPU side. Here: device queries, the cuBLAS handle and CUDA failures as Python
// exceptions; device arrays (cuda_array.cpp) and the kernels (cuda_<op>.cpp) register below.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cuda/deferred_checks.h"
#include "cuda/graph.h"
#include "cuda/runtime.h"
#include "fastconv/build_config.h"
#include "python/checks.h"
#include "python/bindings.h"

namespace py = pybind11;
using namespace fastconv::cuda;

namespace {

py::dict device_properties(py::handle index_obj) {
  // Checked here: pybind11's int caster would answer 2**40 with a signature dump.
  int overflow = 0;
  long long index = -1;
  if (!PyBool_Check(index_obj.ptr()) && PyLong_Check(index_obj.ptr()))
    index = PyLong_AsLongLongAndOverflow(index_obj.ptr(), &overflow);
  const int count = device_count().count;
  if (overflow != 0 || index < 0 || index >= count) {
    PyErr_Clear();
    throw py::value_error("index must be a device number in [0, " + std::to_string(count) +
                          "); got " + py::repr(index_obj).cast<std::string>());
  }
  cudaDeviceProp p{};
  FC_CUDA_CHECK(cudaGetDeviceProperties(&p, static_cast<int>(index)));
  py::dict d;
  d["name"] = std::string(p.name);
  d["compute_capability"] = py::make_tuple(p.major, p.minor);
  d["total_memory"] = p.totalGlobalMem;
  d["multiprocessors"] = p.multiProcessorCount;
  d["l2_cache_bytes"] = p.l2CacheSize;
  return d;
}

void check_errors() {
  py::gil_scoped_release nogil;
  check_deferred();
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastconv CUDA runtime: devices, device arrays, cuBLAS, kernels";
  static py::exception<CudaError> cuda_error(m, "CudaError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CudaError& e) {
      py::set_error(cuda_error, e.what());
    }
  });

  m.def("device_count", [] { return device_count().count; });
  m.def("status", [] {
    DeviceCount d = device_count();
    return py::make_tuple(d.count > 0, d.reason);
  }, "(available, reason): the reason says why no device is usable, or is empty.");
  m.def("device_properties", &device_properties, py::arg("index") = 0);
  m.def("synchronize", [] {
    refuse_in_capture("synchronize()");
    {
      py::gil_scoped_release nogil;
      FC_CUDA_CHECK(cudaDeviceSynchronize());
    }
    check_errors();
  }, "Wait for all queued GPU work (fastconv's stream included), then check_errors().");
  m.attr("deferred_check_slots") = kMaxDeferred;
  m.def("check_errors", &check_errors,
        "Raise the first data error a kernel found since the last check (a label outside [0, C), "
        "a bad target weight, a gather index out of range) as a ValueError; waits for the "
        "device only if a check is pending. Copies to the host do the same first.");
  m.def("cublas_version", &cublas_runtime_version,
        "Version of the cuBLAS library loaded at run time, as major*10000 + minor*100 + patch.");
  m.def("cublas_init", [] { (void)cublas_handle(); },
        "Create the process's cuBLAS handle (needs a device).");
  m.def("runtime_version", [] {
    int v = 0;
    FC_CUDA_CHECK(cudaRuntimeGetVersion(&v));
    return v;
  });
  m.attr("built_archs") = FASTCONV_CUDA_ARCHS;
  m.attr("built_cublas_version") = FASTCONV_CUBLAS_VERSION;

  namespace bind = fastconv::bind;
  bind::bind_device_array(m);
  m.def("_set_poison_outputs", &bind::set_poison_outputs, py::arg("on"),
        "Tests: fill every output of the CUDA kernels with NaN (or the lowest int64) first.");
  bind::bind_cuda_conv(m);
  bind::bind_cuda_pool(m);
  bind::bind_cuda_loss(m);
  bind::bind_cuda_dense(m);
  bind::bind_cuda_activation(m);
  bind::bind_cuda_optim(m);
  bind::bind_cuda_data(m);
  bind::bind_cuda_layout(m);
  bind::bind_cuda_graph(m);
}
