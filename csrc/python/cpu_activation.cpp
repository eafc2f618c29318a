// Bindings for relu and dropout.
#include <cmath>
#include <cstdint>
#include <string>

#include "cpu/activation.h"
#include "python/args.h"
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

py::array dropout_forward(py::handle x_obj, py::handle ratio_obj, py::handle seed_obj) {
  auto x = float_array(x_obj, "x", -1, "");
  double ratio = ratio_arg(ratio_obj);
  std::uint64_t seed = seed_arg(seed_obj);
  return with_float(dtype_of(x), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array y = new_output<T>(shape_of(x));
    {
      py::gil_scoped_release nogil;
      cpu::dropout_forward(ptr<T>(y), cptr<T>(x), x.size(), ratio, seed);
    }
    return y;
  });
}

py::array dropout_backward(py::handle dy_obj, py::handle ratio_obj, py::handle seed_obj) {
  auto dy = float_array(dy_obj, "dy", -1, "");
  double ratio = ratio_arg(ratio_obj);
  std::uint64_t seed = seed_arg(seed_obj);
  return with_float(dtype_of(dy), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array dx = new_output<T>(shape_of(dy));
    {
      py::gil_scoped_release nogil;
      cpu::dropout_backward(ptr<T>(dx), cptr<T>(dy), dy.size(), ratio, seed);
    }
    return dx;
  });
}

DType dtype_arg(py::handle obj) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    throw py::type_error("dtype must be float32 or float64; got " + type_name(obj));
  }
  if (dt.is(py::dtype::of<float>())) return DType::f32;
  if (dt.is(py::dtype::of<double>())) return DType::f64;
  throw py::type_error("dtype must be float32 or float64; got " + py::str(dt).cast<std::string>());
}

py::array dropout_mask(py::handle shape_obj, py::handle ratio_obj, py::handle seed_obj,
                       py::handle dtype_obj) {
  auto shape = shape_arg(shape_obj);
  double ratio = ratio_arg(ratio_obj);
  std::uint64_t seed = seed_arg(seed_obj);
  return with_float(dtype_arg(dtype_obj), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array mask = new_output<T>(shape);
    {
      py::gil_scoped_release nogil;
      cpu::dropout_mask(ptr<T>(mask), mask.size(), ratio, seed);
    }
    return mask;
  });
}

}  // namespace

void bind_activation(py::module_& m) {
  m.def("relu_forward", &relu_forward, py::arg("x"));
  m.def("relu_backward", &relu_backward, py::arg("dy"), py::arg("y"));
  m.def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_backward", &dropout_backward, py::arg("dy"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_mask", &dropout_mask, py::arg("shape"), py::arg("ratio"), py::arg("seed"),
        py::arg("dtype"));
}

}  // namespace fastconv::bind
