#include "python/args.h"

#include "python/checks.h"

namespace fastconv::bind {

std::string num_str(double v) { return py::str(py::float_(v)).cast<std::string>(); }

double non_negative_arg(py::handle obj, const char* name) {
  double v = real_arg(obj, name);
  if (v < 0) throw py::value_error(std::string(name) + " must be >= 0; got " + num_str(v));
  return v;
}

double beta_arg(py::handle obj, const char* name) {
  double v = real_arg(obj, name);
  if (!(v >= 0 && v < 1))
    throw py::value_error(std::string(name) + " must be in [0, 1); got " + num_str(v));
  return v;
}

index_t step_arg(py::handle obj) {
  if (obj.is_none() || py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
    throw py::type_error("step must be an int (the 1-based count of this update), got " +
                         type_name(obj));
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  long long s = PyLong_AsLongLong(v.ptr());
  if (s == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("step is out of range; got " + py::str(v).cast<std::string>());
  }
  if (s < 1)
    throw py::value_error("step must be >= 1 (the 1-based count of this update); got " +
                          std::to_string(s));
  return static_cast<index_t>(s);
}

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

}  // namespace fastconv::bind
