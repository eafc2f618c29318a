// Bindings for relu and dropout.
#include "cpu/activation.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"

namespace fastconv::bind {
namespace {

py::array relu_forward(py::handle x_obj) {
  auto x = float_array(x_obj, "x", -1, "");
  return with_float(dtype_of(x), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array y = new_output<T>(shape_of(x));
    {
      py::gil_scoped_release nogil;
      cpu::relu_forward(ptr<T>(y), cptr<T>(x), x.size());
    }
    return y;
  });
}

py::array relu_backward(py::handle dy_obj, py::handle y_obj) {
  auto dy = float_array(dy_obj, "dy", -1, "");
  auto y = float_array(y_obj, "y", -1, "");
  check_same_dtype(y, "y", dy, "dy");
  check_shape_like(y, "y", dy, "dy");
  return with_float(dtype_of(dy), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array dx = new_output<T>(shape_of(dy));
    {
      py::gil_scoped_release nogil;
      cpu::relu_backward(ptr<T>(dx), cptr<T>(dy), cptr<T>(y), dy.size());
    }
    return dx;
  });
}

}  // namespace

void bind_activation(py::module_& m) {
  m.def("relu_forward", &relu_forward, py::arg("x"));
  m.def("relu_backward", &relu_backward, py::arg("dy"), py::arg("y"));
}

}  // namespace fastconv::bind
