// fastconv._cuda: the GPU side. For now: device queries, device buffers with host copies, the
// cuBLAS handle, and CUDA failures as Python exceptions. Kernels arrive in later steps.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "cuda/runtime.h"
#include "fastconv/build_config.h"
#include "python/checks.h"

namespace py = pybind11;
using namespace fastconv::cuda;

namespace {

py::array host_array(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array");
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  return a;
}

void check_fits(const DeviceBuffer& b, const py::array& a, const char* name) {
  if (static_cast<std::size_t>(a.nbytes()) > b.nbytes())
    throw py::value_error(std::string(name) + " has " + std::to_string(a.nbytes()) +
                          " bytes but the buffer holds " + std::to_string(b.nbytes()));
}

py::dict device_properties(int index) {
  cudaDeviceProp p{};
  FC_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  py::dict d;
  d["name"] = std::string(p.name);
  d["compute_capability"] = py::make_tuple(p.major, p.minor);
  d["total_memory"] = p.totalGlobalMem;
  d["multiprocessors"] = p.multiProcessorCount;
  return d;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastconv CUDA runtime: devices, device memory, cuBLAS";
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
  m.def("synchronize", [] { FC_CUDA_CHECK(cudaDeviceSynchronize()); });
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

  py::class_<DeviceBuffer>(m, "DeviceBuffer", "Raw device memory with host copies.")
      .def(py::init([](py::ssize_t nbytes) {
             fastconv::bind::check_non_negative(nbytes, "nbytes");
             return new DeviceBuffer(static_cast<std::size_t>(nbytes));
           }), py::arg("nbytes"))
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
      .def_property_readonly("ptr", [](const DeviceBuffer& b) {
        return reinterpret_cast<std::uintptr_t>(b.data());
      })
      .def("upload", [](DeviceBuffer& b, py::handle src) {
        auto a = host_array(src, "src");
        check_fits(b, a, "src");
        b.copy_from_host(a.data(), a.nbytes());
      }, py::arg("src"), "Copy a host array's bytes to the start of the buffer.")
      .def("download", [](const DeviceBuffer& b, py::handle dst) {
        auto a = host_array(dst, "dst");
        if (!a.writeable()) throw py::value_error("dst must be writeable");
        check_fits(b, a, "dst");
        b.copy_to_host(a.mutable_data(), a.nbytes());
      }, py::arg("dst"), "Copy the buffer's first dst.nbytes bytes into dst.")
      .def("fill", &DeviceBuffer::fill_float, py::arg("value"),
           "Fill the buffer with a float32 value.");
}
