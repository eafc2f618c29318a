// Bindings for relu and dropout.
#include <cmath>
#include <cstdint>
#include <string>

#include "cpu/activation.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"

namespace fastconv::bind {
namespace {

double ratio_arg(py::handle obj) {
  double r = real_arg(obj, "ratio");
  if (!(r >= 0.0 && r < 1.0))  // also rejects NaN
    throw py::value_error("ratio must be in [0, 1); got " + std::to_string(r));
  return r;
}

// Seeds cover the whole uint64 range so any 64-bit counter or hash can serve as one.
std::uint64_t seed_arg(py::handle obj) {
  if (obj.is_none() || py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
    throw py::type_error("seed must be a non-negative int < 2**64, got " + type_name(obj));
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  std::string text = py::str(v).cast<std::string>();
  if (PyObject_RichCompareBool(v.ptr(), py::int_(0).ptr(), Py_LT) == 1)
    throw py::value_error("seed must be a non-negative int < 2**64; got " + text);
  unsigned long long s = PyLong_AsUnsignedLongLong(v.ptr());
  if (s == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("seed must be a non-negative int < 2**64; got " + text);
  }
  return static_cast<std::uint64_t>(s);
}

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

std::vector<index_t> shape_arg(py::handle obj) {
  std::vector<index_t> shape;
  if (!obj.is_none() && !py::isinstance<py::bool_>(obj) && PyIndex_Check(obj.ptr())) {
    shape.push_back(py::cast<index_t>(py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()))));
  } else if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    for (py::handle d : obj) {
      if (py::isinstance<py::bool_>(d) || !PyIndex_Check(d.ptr()))
        throw py::type_error("shape must hold ints, got " + type_name(d));
      shape.push_back(py::cast<index_t>(py::reinterpret_steal<py::int_>(PyNumber_Index(d.ptr()))));
    }
  } else {
    throw py::type_error("shape must be an int or a tuple of ints, got " + type_name(obj));
  }
  for (index_t d : shape) check_non_negative(d, "shape entries");
  return shape;
}

DType dtype_arg(py::handle obj) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    throw py::type_error("dtype must be float32 or float64, got " + type_name(obj));
  }
  if (dt.is(py::dtype::of<float>())) return DType::f32;
  if (dt.is(py::dtype::of<double>())) return DType::f64;
  throw py::type_error("dtype must be float32 or float64, got " + py::str(dt).cast<std::string>());
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
