// Bindings of relu and dropout on the GPU (the CPU twin: cpu_activation.cpp).
// Argument checks and outputs: cuda_args.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/activation.h"
#include "python/args.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/cuda_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

// The mask's dtype: float32 only on the GPU.
void check_mask_dtype(py::handle obj) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    throw py::type_error("dtype must be float32; got " + type_name(obj));
  }
  if (!dt.is(py::dtype::of<float>()))
    throw py::type_error("dtype must be float32 (the GPU kernels take float32 only); got " +
                         py::str(dt).cast<std::string>());
}

py::object relu_forward(py::handle x_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "");
  DeviceArray y = new_output(x.shape());
  cuda::relu_forward(mp<float>(y), cp<float>(x), x.size());
  return out(std::move(y));
}

py::object relu_backward(py::handle dy_obj, py::handle y_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "");
  const DeviceArray& y = float_dev(y_obj, "y", -1, "");
  check_shape_like(y, "y", dy, "dy");
  DeviceArray dx = new_output(dy.shape());
  cuda::relu_backward(mp<float>(dx), cp<float>(dy), cp<float>(y), dy.size());
  return out(std::move(dx));
}

py::object dropout_forward(py::handle x_obj, py::handle ratio_obj, py::handle seed_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "");
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  DeviceArray y = new_output(x.shape());
  cuda::dropout_forward(mp<float>(y), cp<float>(x), x.size(), ratio, seed);
  return out(std::move(y));
}

py::object dropout_backward(py::handle dy_obj, py::handle ratio_obj, py::handle seed_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "");
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  DeviceArray dx = new_output(dy.shape());
  cuda::dropout_backward(mp<float>(dx), cp<float>(dy), dy.size(), ratio, seed);
  return out(std::move(dx));
}

py::object dropout_mask(py::handle shape_obj, py::handle ratio_obj, py::handle seed_obj,
                        py::handle dtype_obj) {
  auto shape = shape_arg(shape_obj);
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  check_mask_dtype(dtype_obj);
  DeviceArray mask = new_output(std::move(shape));
  cuda::dropout_mask(mp<float>(mask), mask.size(), ratio, seed);
  return out(std::move(mask));
}

}  // namespace

void bind_cuda_activation(py::module_& m) {
  m.def("relu_forward", &relu_forward, py::arg("x"));
  m.def("relu_backward", &relu_backward, py::arg("dy"), py::arg("y"));
  m.def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_backward", &dropout_backward, py::arg("dy"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_mask", &dropout_mask, py::arg("shape"), py::arg("ratio"), py::arg("seed"),
        py::arg("dtype"));
}

}  // namespace fastconv::bind
