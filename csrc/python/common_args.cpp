#include "python/args.h"

#include <limits>
#include <string>

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

std::optional<index_t> int64_of(py::handle obj) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr())) return std::nullopt;
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0) return std::nullopt;
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<index_t>(v);
}

std::string index_str(py::handle obj) {
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!i) throw py::error_already_set();
  return py::str(i).cast<std::string>();
}

index_t int64_arg(py::handle obj, const char* name) {
  const bool is_bool = py::isinstance<py::bool_>(obj) ||
                       py::isinstance(obj, py::module_::import("numpy").attr("bool_"));
  if (obj.is_none() || is_bool || !PyIndex_Check(obj.ptr()))
    throw py::type_error(text::cat(name, " must be an int; got ", type_name(obj), " ",
                                   py::repr(obj).cast<std::string>()));
  const std::optional<index_t> v = int64_of(obj);
  if (!v)
    throw py::value_error(text::cat(name, " must be an int64 value in [",
                                    std::numeric_limits<index_t>::min(), ", ",
                                    std::numeric_limits<index_t>::max(), "]; got ",
                                    index_str(obj)));
  return *v;
}

std::optional<py::dtype> numpy_dtype_of(py::handle obj) {
  try {
    return py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    return std::nullopt;
  }
}

std::optional<DType> fastconv_dtype(const py::dtype& dt) {
  // Hosts with CUDA GPUs (x86-64, aarch64) are little-endian: native order is '=' or '<'.
  const char order = dt.byteorder();
  if (order != '=' && order != '|' && order != '<') return std::nullopt;
  if (dt.kind() == 'f' && dt.itemsize() == 4) return DType::f32;
  if (dt.kind() == 'f' && dt.itemsize() == 8) return DType::f64;
  if (dt.kind() == 'i' && dt.itemsize() == 8) return DType::i64;
  return std::nullopt;
}

DType dtype_arg(py::handle obj, bool float32_only) {
  const std::optional<py::dtype> dt = numpy_dtype_of(obj);
  if (!dt)
    throw py::type_error(std::string("dtype must be ") +
                         (float32_only ? "float32" : "float32 or float64") + "; got " +
                         type_name(obj));
  const std::optional<DType> d = fastconv_dtype(*dt);
  if (d == DType::f32 || (d == DType::f64 && !float32_only)) return *d;
  const std::string got = py::str(*dt).cast<std::string>();
  if (float32_only)
    throw py::type_error("dtype must be float32 (the GPU kernels take float32 only); got " + got);
  throw py::type_error("dtype must be float32 or float64; got " + got);
}

SgdArgs sgd_args(py::handle lr, py::handle momentum, py::handle nesterov,
                 py::handle weight_decay) {
  SgdArgs a{};
  a.lr = non_negative_arg(lr, "lr");
  a.momentum = non_negative_arg(momentum, "momentum");
  a.nesterov = bool_arg(nesterov, "nesterov");
  a.weight_decay = non_negative_arg(weight_decay, "weight_decay");
  if (a.nesterov && a.momentum == 0)
    throw py::value_error("nesterov=True needs momentum > 0; got momentum 0");
  return a;
}

AdamArgs adam_args(py::handle step, py::handle lr, py::handle beta1, py::handle beta2,
                   py::handle eps, py::handle weight_decay) {
  AdamArgs a{};
  a.step = step_arg(step);
  a.lr = non_negative_arg(lr, "lr");
  a.beta1 = beta_arg(beta1, "beta1");
  a.beta2 = beta_arg(beta2, "beta2");
  a.eps = real_arg(eps, "eps");
  if (!(a.eps > 0)) throw py::value_error("eps must be > 0; got " + num_str(a.eps));
  a.weight_decay = non_negative_arg(weight_decay, "weight_decay");
  return a;
}

namespace {

// One entry of a shape: an int (bools refused) in [0, 2**63). `name` is "shape" for a bare int,
// "shape[i]" for an entry of a tuple.
index_t shape_entry(py::handle obj, const std::string& name) {
  if (obj.is_none() || py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(name + " must be an int; got " + type_name(obj));
  const std::optional<index_t> d = int64_of(obj);
  if (!d || *d < 0)
    throw py::value_error(name + " must be an int in [0, 2**63); got " + index_str(obj));
  return *d;
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
