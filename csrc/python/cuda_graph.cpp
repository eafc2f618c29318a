// What fastconv.graph_step (python/fastconv/graphs.py) builds on: capturing the fastconv stream
// into a CUDA graph and replaying it (cuda/graph.h), and DeviceArray.copy_from, which fills the
// graph's input buffers before each replay without a new allocation.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "cuda/device_array.h"
#include "cuda/graph.h"
#include "cuda/runtime.h"
#include "fastconv/dtype.h"
#include "fastconv/text.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"

namespace py = pybind11;

namespace fastconv::bind {
namespace {

using cuda::DeviceArray;

std::string described(const std::vector<index_t>& shape, DType dt) {
  return text::cat("shape ", text::tuple_str(shape), " and dtype ", dtype_name(dt));
}

// dst <- src, in stream order: a device source is copied on the device (capturable), a numpy
// source is uploaded (a small one without waiting; refused during a capture).
void copy_from(DeviceArray& dst, py::handle src_obj) {
  const std::string expected = described(dst.shape(), dst.dtype());
  if (py::isinstance<DeviceArray>(src_obj)) {
    const DeviceArray& src = src_obj.cast<const DeviceArray&>();
    if (src.shape() != dst.shape() || src.dtype() != dst.dtype())
      throw py::value_error("src must have " + expected + " (this array's); got " +
                            described(src.shape(), src.dtype()));
    if (dst.nbytes() == 0 || src.raw() == dst.raw()) return;
    FC_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), dst.nbytes(), cudaMemcpyDeviceToDevice,
                                  cuda::stream()));
    return;
  }
  if (!py::isinstance<py::array>(src_obj))
    throw py::type_error("src must be a DeviceArray or a numpy array; got " + type_name(src_obj));
  auto a = py::reinterpret_borrow<py::array>(src_obj);
  const std::vector<index_t> shape(a.shape(), a.shape() + a.ndim());
  const std::optional<DType> dt = fastconv_dtype(a.dtype());
  if (shape != dst.shape() || !dt || *dt != dst.dtype())
    throw py::value_error("src must have " + expected + " (this array's); got shape " +
                          text::tuple_str(shape) + " and dtype " +
                          py::str(py::handle(reinterpret_cast<PyObject*>(a.dtype().ptr())))
                              .cast<std::string>());
  auto contiguous = py::array::ensure(a, py::array::c_style);
  dst.copy_from_host(contiguous.data(), static_cast<std::size_t>(contiguous.nbytes()));
}

}  // namespace

void bind_cuda_graph(py::module_& m) {
  auto array = py::reinterpret_borrow<py::class_<DeviceArray>>(m.attr("DeviceArray"));
  array.def("copy_from", &copy_from, py::arg("src"),
            "Copy src (a DeviceArray or numpy array of this array's shape and dtype) into this "
            "array, in stream order; returns without waiting unless a large host copy needs to.");

  py::class_<cuda::Graph>(m, "CapturedGraph",
                          "A step captured by begin_capture/end_capture; launch() replays it.")
      .def("launch", &cuda::Graph::launch,
           "Queue one replay on fastconv's stream; returns without waiting.");
  m.def("begin_capture", &cuda::begin_capture,
        "Start capturing fastconv's stream: later ops are recorded, not run (graph_step uses it).");
  m.def("end_capture", [] { return cuda::end_capture(); },
        "End the capture: the recorded work as a CapturedGraph.");
  m.def("abandon_capture", &cuda::abandon_capture,
        "End a capture that failed part way, dropping what was recorded.");
  m.def("capturing", &cuda::capturing, "True while a capture is under way.");
}

}  // namespace fastconv::bind
