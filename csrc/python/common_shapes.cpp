#include "python/shapes.h"

#include <limits>
#include <optional>
#include <string>

#include "fastconv/text.h"
#include "python/args.h"

namespace fastconv::bind {
namespace {

constexpr index_t kIndexMax = std::numeric_limits<index_t>::max();

std::string pair_str(const Pair& p) { return text::tuple_str(p); }

void check_pair(const Pair& p, const char* name, index_t least) {
  if (p[0] < least || p[1] < least)
    throw py::value_error(text::cat(name, " must be >= ", least, " in both dimensions; got ",
                                    pair_str(p)));
}

// "x.shape[2] (height) must be positive; got shape (1, 1, 0, 4)": the whole shape, so that the
// message shows which array it was.
void check_axis_positive(const Dims& shape, const char* name, int axis, const char* what) {
  if (shape[static_cast<std::size_t>(axis)] < 1)
    throw py::value_error(text::cat(name, ".shape[", axis, "] (", what,
                                    ") must be positive; got shape ", dims_str(shape)));
}

// x (N, C, H, W) of conv2d and pooling: every axis at least 1.
void check_image_positive(const Dims& x) {
  check_axis_positive(x, "x", 0, "batch");
  check_axis_positive(x, "x", 1, "channels");
  check_axis_positive(x, "x", 2, "height");
  check_axis_positive(x, "x", 3, "width");
}

bool count_fits(const Dims& dims, index_t* count) {
  return try_product(dims.data(), static_cast<int>(dims.size()), count) && *count < kMaxElements;
}

// An existing array's element count: numpy arrays always pass, device shapes are checked too.
void check_array_elements(const Dims& shape, const char* name) {
  index_t count;
  if (!count_fits(shape, &count))
    throw py::value_error(text::cat(name, " must have fewer than 2**60 elements; got shape ",
                                    dims_str(shape)));
}

void check_output_elements(const Dims& out, const char* inputs) {
  index_t count;
  if (!count_fits(out, &count))
    throw py::value_error(text::cat(inputs,
                                    " must give an output of fewer than 2**60 elements; got "
                                    "output shape ",
                                    dims_str(out)));
}

const char* const kConvInputs = "x and w with this stride, padding and dilation";

// Output height or width below 1: the padded input is shorter than one window.
void check_conv_fits(index_t out, const Dims& x, int axis, const char* name, index_t k,
                     index_t p, index_t d) {
  if (out >= 1) return;
  const index_t reach = d * (k - 1) + 1;  // fits: conv_axis_size checked it
  throw py::value_error(text::cat("x.shape[", axis, "] (", name,
                                  ") + 2 * padding must be at least the kernel's reach ", reach,
                                  " (kernel ", name, " ", k, ", dilation ", d, "); got ", name,
                                  " ", x[static_cast<std::size_t>(axis)], " with padding ", p));
}

void check_pool_fits(index_t out, const Dims& x, int axis, const char* name, index_t k,
                     index_t p) {
  if (out >= 1) return;
  throw py::value_error(text::cat("x.shape[", axis, "] (", name,
                                  ") + 2 * padding must be at least the filter ", name, " ", k,
                                  "; got ", name, " ", x[static_cast<std::size_t>(axis)],
                                  " with padding ", p));
}

void check_padded_size(const char* axis, index_t in, index_t p, const std::string& padding_got) {
  index_t padded;
  if (!padded_size(in, p, &padded))
    throw py::value_error(text::cat("padding must be at most ", (kIndexMax - in) / 2,
                                    " for an input ", axis, " of ", in, ", so that ", axis,
                                    " + 2 * padding fits in int64; got ", padding_got));
}


// The value a malformed size argument had: its type, and its repr where that is short.
std::string described(py::handle obj) {
  const std::string r = py::repr(obj).cast<std::string>();
  return r.size() <= 40 ? text::cat(type_name(obj), " ", r) : type_name(obj);
}

bool is_bool(py::handle obj) {
  return PyBool_Check(obj.ptr()) ||
         py::isinstance(obj, py::module_::import("numpy").attr("bool_"));
}

[[noreturn]] void not_int64(const char* name, const std::string& got) {
  throw py::value_error(text::cat(name, " must hold int64 values, in [",
                                  std::numeric_limits<index_t>::min(), ", ", kIndexMax,
                                  "]; got ", got));
}

}  // namespace

index_t conv_axis_size(const char* axis, index_t in, index_t k, index_t s, index_t p, index_t d,
                       const std::string& padding_got, const std::string& dilation_got) {
  check_padded_size(axis, in, p, padding_got);
  index_t reach;
  if (!kernel_reach(k, d, &reach))  // only for k >= 2: a 1-tap kernel reaches 1 at any dilation
    throw py::value_error(text::cat("dilation must be at most ", (kIndexMax - 1) / (k - 1),
                                    " for a kernel ", axis, " of ", k,
                                    ", so that dilation * (kernel ", axis,
                                    " - 1) + 1 fits in int64; got ", dilation_got));
  return conv_out_size(in, k, s, p, d);
}

index_t pool_axis_size(const char* axis, index_t in, index_t k, index_t s, index_t p,
                       bool ceil_mode, const std::string& padding_got) {
  check_padded_size(axis, in, p, padding_got);
  return pool_out_size(in, k, s, p, ceil_mode);
}

Conv2dShape conv2d_shape(const Dims& x, const Dims& w, Pair stride, Pair padding, Pair dilation) {
  check_dim(w, "w", 1, x[1], "x's channels");
  check_pair(stride, "stride", 1);
  check_pair(padding, "padding", 0);
  check_pair(dilation, "dilation", 1);
  check_image_positive(x);
  check_axis_positive(w, "w", 0, "output channels");
  check_axis_positive(w, "w", 2, "kernel height");
  check_axis_positive(w, "w", 3, "kernel width");
  check_array_elements(x, "x");
  check_array_elements(w, "w");
  Conv2dShape s{};
  s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3];
  s.k = w[0], s.kh = w[2], s.kw = w[3];
  s.sh = stride[0], s.sw = stride[1], s.ph = padding[0], s.pw = padding[1];
  s.dh = dilation[0], s.dw = dilation[1];
  const std::string padding_got = pair_str(padding), dilation_got = pair_str(dilation);
  s.oh = conv_axis_size("height", s.h, s.kh, s.sh, s.ph, s.dh, padding_got, dilation_got);
  s.ow = conv_axis_size("width", s.w, s.kw, s.sw, s.pw, s.dw, padding_got, dilation_got);
  check_conv_fits(s.oh, x, 2, "height", s.kh, s.ph, s.dh);
  check_conv_fits(s.ow, x, 3, "width", s.kw, s.pw, s.dw);
  check_output_elements({s.n, s.k, s.oh, s.ow}, kConvInputs);
  // One sample's im2col matrix, the unit every scratch size is a multiple of. Its row count
  // divides w's element count and its column count the output's, so both fit on their own.
  index_t col;
  if (!try_mul(s.col_rows(), s.out_plane(), &col) || col >= kMaxElements)
    throw py::value_error(text::cat(kConvInputs,
                                    " must give an im2col matrix of fewer than 2**60 elements per "
                                    "sample; got ", s.col_rows(), " rows (C * kh * kw) by ",
                                    s.out_plane(), " columns (OH * OW)"));
  return s;
}

Pool2dShape pool2d_shape(const Dims& x, Pair filter, Pair stride, Pair padding, bool ceil_mode) {
  check_pair(filter, "filter", 1);
  check_pair(stride, "stride", 1);
  check_pair(padding, "padding", 0);
  if (padding[0] > filter[0] / 2 || padding[1] > filter[1] / 2)  // 2 * padding may overflow
    throw py::value_error(text::cat("padding must be at most half the filter size; got padding ",
                                    pair_str(padding), " for filter ", pair_str(filter)));
  check_image_positive(x);
  check_array_elements(x, "x");
  Pool2dShape s{};
  s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3];
  s.kh = filter[0], s.kw = filter[1], s.sh = stride[0], s.sw = stride[1];
  s.ph = padding[0], s.pw = padding[1];
  const std::string padding_got = pair_str(padding);
  s.oh = pool_axis_size("height", s.h, s.kh, s.sh, s.ph, ceil_mode, padding_got);
  s.ow = pool_axis_size("width", s.w, s.kw, s.sw, s.pw, ceil_mode, padding_got);
  check_pool_fits(s.oh, x, 2, "height", s.kh, s.ph);
  check_pool_fits(s.ow, x, 3, "width", s.kw, s.pw);
  check_output_elements({s.n, s.c, s.oh, s.ow}, "x with this filter, stride and padding");
  return s;
}

Dims shape4_arg(py::handle obj, const char* name, const char* layout) {
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    return shape_of(float_array(obj, name, 4, layout));
  const std::string entry = std::string(name) + "'s shape entries";
  Dims dims;
  for (py::handle d : obj) dims.push_back(int64_arg(d, entry.c_str()));
  if (dims.size() != 4)
    throw py::value_error(text::cat(name, " must be 4-D ", layout, "; got shape ",
                                    dims_str(dims)));
  return dims;
}

Pair pair_arg(py::handle obj, const char* name) {
  const std::string expected = text::cat(name, " must be an int or a pair of ints");
  if (is_bool(obj) || py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj))
    throw py::type_error(text::cat(expected, "; got ", described(obj)));
  if (PyIndex_Check(obj.ptr())) {
    const std::optional<index_t> v = int64_of(obj);
    if (!v) not_int64(name, index_str(obj));
    return {*v, *v};
  }
  // tuple(obj), as the Python layer takes it: any iterable of two items.
  py::object items = py::reinterpret_steal<py::object>(PySequence_Tuple(obj.ptr()));
  if (!items) {
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) throw py::error_already_set();
    PyErr_Clear();
    throw py::type_error(text::cat(expected, "; got ", described(obj)));
  }
  const auto t = py::reinterpret_borrow<py::tuple>(items);
  const std::string shown = py::repr(obj).cast<std::string>();
  if (t.size() != 2) throw py::value_error(text::cat(expected, " (h, w); got ", shown));
  if (is_bool(t[0]) || is_bool(t[1]))
    throw py::type_error(text::cat(name, " must hold ints, not bools; got ", shown));
  if (!PyIndex_Check(t[0].ptr()) || !PyIndex_Check(t[1].ptr()))
    throw py::type_error(text::cat(name, " must hold ints; got ", shown));
  const std::optional<index_t> h = int64_of(t[0]), w = int64_of(t[1]);
  if (!h || !w) not_int64(name, text::cat("(", index_str(t[0]), ", ", index_str(t[1]), ")"));
  return {*h, *w};
}

}  // namespace fastconv::bind
