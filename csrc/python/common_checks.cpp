#include "python/checks.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "fastconv/checked.h"
#include "fastconv/text.h"
#include "python/output_blocks.h"

namespace fastconv::bind {
namespace {

bool g_poison = false;

// " (N, C, H, W)", or nothing where the binding names no layout.
std::string layout_suffix(const char* layout) {
  return layout && *layout ? std::string(" ") + layout : std::string();
}

py::array numpy_array(py::handle obj, const char* name, int ndim, const char* layout) {
  if (obj.is_none())
    throw py::type_error(std::string(name) + " must be a numpy array" + layout_suffix(layout) +
                         "; got None");
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array" + layout_suffix(layout) +
                         "; got " + type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  check_rank(shape_of(a), name, ndim, layout);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(text::cat(name, " must be C-contiguous (pass numpy.ascontiguousarray(",
                                    name, ")); got shape ", shape_str(a), " with strides ",
                                    text::tuple_str(std::vector<py::ssize_t>(
                                        a.strides(), a.strides() + a.ndim()))));
  return a;
}

}  // namespace

std::string dims_str(const Dims& d) { return text::tuple_str(d); }

std::string shape_str(const py::array& a) { return dims_str(shape_of(a)); }

std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

double real_arg(py::handle obj, const char* name) {
  bool ok = !obj.is_none() && !py::isinstance<py::bool_>(obj) &&
            (PyFloat_Check(obj.ptr()) || PyIndex_Check(obj.ptr()) ||
             py::isinstance(obj, py::module_::import("numpy").attr("floating")));
  if (!ok)
    throw py::type_error(std::string(name) + " must be a real number; got " + type_name(obj));
  double v = py::cast<double>(py::float_(py::reinterpret_borrow<py::object>(obj)));
  if (!std::isfinite(v))
    throw py::value_error(std::string(name) + " must be finite; got " +
                          py::str(py::float_(v)).cast<std::string>());
  return v;
}

bool bool_arg(py::handle obj, const char* name) {
  if (!py::isinstance<py::bool_>(obj) &&
      !py::isinstance(obj, py::module_::import("numpy").attr("bool_")))
    throw py::type_error(std::string(name) + " must be a bool; got " + type_name(obj));
  return py::cast<bool>(py::bool_(py::reinterpret_borrow<py::object>(obj)));
}

std::vector<index_t> shape_of(const py::array& a) {
  return std::vector<index_t>(a.shape(), a.shape() + a.ndim());
}

DType dtype_of(const py::array& a) {
  return a.dtype().is(py::dtype::of<float>()) ? DType::f32 : DType::f64;
}

py::array float_array(py::handle obj, const char* name, int ndim, const char* layout) {
  auto a = numpy_array(obj, name, ndim, layout);
  if (!a.dtype().is(py::dtype::of<float>()) && !a.dtype().is(py::dtype::of<double>()))
    throw py::type_error(std::string(name) + " must have dtype float32 or float64; got " +
                         py::str(a.dtype()).cast<std::string>());
  return a;
}

py::array inout_array(py::handle obj, const char* name, int ndim, const char* layout) {
  auto a = float_array(obj, name, ndim, layout);
  if (!a.writeable())
    throw py::value_error(std::string(name) +
                          " must be a writeable array (it is updated in place); got a read-only "
                          "array");
  return a;
}

py::array int_array(py::handle obj, const char* name, int ndim, const char* layout) {
  auto a = numpy_array(obj, name, ndim, layout);
  if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
    throw py::type_error(std::string(name) + " must have an integer dtype; got " +
                         py::str(a.dtype()).cast<std::string>());
  return a;
}

void check_same_dtype(const py::array& a, const char* a_name, const py::array& b,
                      const char* b_name) {
  if (!a.dtype().is(b.dtype()))
    throw py::type_error(std::string(a_name) + " must have the dtype of " + b_name + " (" +
                         py::str(b.dtype()).cast<std::string>() + "); got " +
                         py::str(a.dtype()).cast<std::string>());
}

void check_rank(const Dims& shape, const char* name, int ndim, const char* layout) {
  if (ndim >= 0 && shape.size() != static_cast<std::size_t>(ndim))
    throw py::value_error(text::cat(name, " must be ", ndim, "-D", layout_suffix(layout),
                                    "; got shape ", dims_str(shape)));
}

void check_dim(const Dims& shape, const char* name, int axis, index_t expected, const char* what) {
  if (shape[static_cast<std::size_t>(axis)] != expected)
    throw py::value_error(std::string(name) + ".shape[" + std::to_string(axis) + "] must be " +
                          std::to_string(expected) + " (" + what + "); got shape " +
                          dims_str(shape));
}

void check_shape_like(const Dims& shape, const char* name, const Dims& ref,
                      const char* ref_name) {
  if (shape != ref)
    throw py::value_error(std::string(name) + " must have the shape of " + ref_name + " " +
                          dims_str(ref) + "; got " + dims_str(shape));
}

std::optional<py::array> relu_y_arg(py::handle obj, const py::array& dy, int ndim,
                                    const char* layout) {
  if (obj.is_none()) return std::nullopt;
  py::array relu_y = float_array(obj, "relu_y", ndim, layout);
  check_same_dtype(relu_y, "relu_y", dy, "dy");
  check_shape_like(shape_of(relu_y), "relu_y", shape_of(dy), "dy");
  return relu_y;
}

void check_disjoint(const void* a, std::size_t a_bytes, const char* a_name, const void* b,
                    std::size_t b_bytes, const char* b_name) {
  // Addresses as integers: comparing pointers into different objects is unspecified in C++.
  const auto lo_a = reinterpret_cast<std::uintptr_t>(a), lo_b = reinterpret_cast<std::uintptr_t>(b);
  const std::uintptr_t hi_a = lo_a + a_bytes, hi_b = lo_b + b_bytes;
  if (a_bytes == 0 || b_bytes == 0 || lo_a >= hi_b || lo_b >= hi_a) return;
  const std::uintptr_t common = (hi_a < hi_b ? hi_a : hi_b) - (lo_a > lo_b ? lo_a : lo_b);
  throw py::value_error(text::cat(a_name, " must not share memory with ", b_name,
                                  " (an in-place update would read what it has just written); "
                                  "got ",
                                  static_cast<std::uint64_t>(common), " of its ",
                                  static_cast<std::uint64_t>(a_bytes), " bytes in common"));
}

void check_conv_bias(const Dims& d, index_t k) {
  const bool flat = d.size() == 1 && d[0] == k;
  const bool nchw = d.size() == 4 && d[0] == 1 && d[1] == k && d[2] == 1 && d[3] == 1;
  if (!flat && !nchw)
    throw py::value_error("b must have shape (" + std::to_string(k) + ",) or (1, " +
                          std::to_string(k) + ", 1, 1) (w's output channels); got " +
                          dims_str(d));
}

void check_positive(index_t v, const char* name) {
  if (v < 1)
    throw py::value_error(std::string(name) + " must be positive; got " + std::to_string(v));
}

void check_non_negative(index_t v, const char* name) {
  if (v < 0)
    throw py::value_error(std::string(name) + " must be >= 0; got " + std::to_string(v));
}

void set_poison_outputs(bool on) { g_poison = on; }
bool poison_outputs() { return g_poison; }

std::string float_str(double v) { return text::cat(v); }

std::string float_str(float v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

namespace {

// numpy's own failure says "Unable to allocate 32.0 GiB"; this one gives the exact request.
[[noreturn]] void raise_out_of_memory(const std::string& bytes, const char* dtype,
                                      const std::vector<index_t>& shape) {
  PyErr_SetString(PyExc_MemoryError, text::cat("out of memory allocating ", bytes, " bytes for a ",
                                               dtype, " output of shape ",
                                               text::tuple_str(shape))
                                         .c_str());
  throw py::error_already_set();
}

template <typename T>
const char* output_dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  if constexpr (std::is_same_v<T, std::uint8_t>) return "uint8";
  return "int64";
}

}  // namespace

template <typename T>
py::array_t<T> new_output(const std::vector<index_t>& shape) {
  // Shapes here come from arrays numpy accepted or from shape_arg, so each dimension and their
  // product fit in int64; the byte count is checked before numpy sees it.
  index_t bytes = static_cast<index_t>(sizeof(T));
  for (index_t d : shape)
    if (!try_mul(bytes, d, &bytes))
      raise_out_of_memory(text::cat("more than ", std::numeric_limits<index_t>::max()),
                          output_dtype_name<T>(), shape);
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<T> out;
  if (static_cast<std::size_t>(bytes) >= kCachedOutputBytes) {
    void* block = take_output_block(static_cast<std::size_t>(bytes));
    if (!block) raise_out_of_memory(text::cat(bytes), output_dtype_name<T>(), shape);
    // The capsule owns the block from here on, also if the array cannot be made.
    py::capsule owner = output_block_owner(block, static_cast<std::size_t>(bytes));
    out = py::array_t<T>(dims, static_cast<T*>(block), owner);
  } else {
    try {
      out = py::array_t<T>(dims);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_MemoryError)) throw;
      raise_out_of_memory(text::cat(bytes), output_dtype_name<T>(), shape);
    }
  }
  if (g_poison) {
    // Unsigned: the highest value (uint8's lowest, 0, is a valid window code).
    T bad = std::numeric_limits<T>::has_quiet_NaN ? std::numeric_limits<T>::quiet_NaN()
            : std::numeric_limits<T>::is_signed   ? std::numeric_limits<T>::lowest()
                                                  : std::numeric_limits<T>::max();
    T* p = out.mutable_data();
    for (py::ssize_t i = 0; i < out.size(); ++i) p[i] = bad;
  }
  return out;
}

template py::array_t<float> new_output<float>(const std::vector<index_t>&);
template py::array_t<double> new_output<double>(const std::vector<index_t>&);
template py::array_t<std::int64_t> new_output<std::int64_t>(const std::vector<index_t>&);
template py::array_t<std::uint8_t> new_output<std::uint8_t>(const std::vector<index_t>&);

}  // namespace fastconv::bind
