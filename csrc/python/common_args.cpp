#include "python/args.h"

#include "fastconv/checked.h"
#include "fastconv/text.h"
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
    throw py::type_error("step must be an int (the 1-based count of this update); got " +
                         type_name(obj));
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  long long s = PyLong_AsLongLong(v.ptr());
  if (s == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("step must be an int in [1, 2**63) (the 1-based count of this update); "
                          "got " + py::str(v).cast<std::string>());
  }
  if (s < 1)
    throw py::value_error("step must be >= 1 (the 1-based count of this update); got " +
                          std::to_string(s));
  return static_cast<index_t>(s);
}

double ratio_arg(py::handle obj) {
  double r = real_arg(obj, "ratio");
  if (!(r >= 0.0 && r < 1.0))  // also rejects NaN
    throw py::value_error("ratio must be in [0, 1); got " + num_str(r));
  return r;
}

// Seeds cover the whole uint64 range so any 64-bit counter or hash can serve as one.
std::uint64_t seed_arg(py::handle obj) {
  if (obj.is_none() || py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
    throw py::type_error("seed must be a non-negative int < 2**64; got " + type_name(obj));
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

namespace {

// One entry of a shape: an int (bools refused) in [0, 2**63). `name` is "shape" for a bare int,
// "shape[i]" for an entry of a tuple.
index_t shape_entry(py::handle obj, const std::string& name) {
  if (obj.is_none() || py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(name + " must be an int; got " + type_name(obj));
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  int overflow = 0;
  const long long d = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
  if (overflow == 0 && d == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0 || d < 0)
    throw py::value_error(name + " must be an int in [0, 2**63); got " +
                          py::str(v).cast<std::string>());
  return static_cast<index_t>(d);
}

}  // namespace

std::vector<index_t> shape_arg(py::handle obj) {
  std::vector<index_t> shape;
  if (!obj.is_none() && !py::isinstance<py::bool_>(obj) && PyIndex_Check(obj.ptr())) {
    shape.push_back(shape_entry(obj, "shape"));
  } else if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    index_t i = 0;
    for (py::handle d : obj) shape.push_back(shape_entry(d, text::cat("shape[", i++, "]")));
  } else {
    throw py::type_error("shape must be an int or a tuple of ints; got " + type_name(obj));
  }
  // The element count must fit in int64 too, as every size below is an index_t.
  index_t count = 1;
  for (index_t d : shape)
    if (!try_mul(count, d, &count))
      throw py::value_error("shape must hold fewer than 2**63 elements in all; got " +
                            text::tuple_str(shape));
  return shape;
}

}  // namespace fastconv::bind
