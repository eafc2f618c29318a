// Bindings for max and average 2-D pooling (the GPU twin: cuda_pool.cpp). The checks on shapes
// are shared (shapes.h); here: numpy arrays, dtypes, outputs, the kernel call.
#include <cstdint>

#include "fastconv/text.h"

#include "cpu/pool.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/pool_indices.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

const char* const kX = "(N, C, H, W)";
const char* const kOut = "(N, C, OH, OW)";

Pool2dShape geometry(const py::array& x, Pair filter, Pair stride, Pair padding,
                     py::handle ceil_obj) {
  return pool2d_shape(shape_of(x), filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
}

py::tuple max_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                             py::handle ceil_obj, py::handle window_obj) {
  const py::array x = float_array(x_obj, "x", 4, kX);
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  const bool codes = bool_arg(window_obj, "window_indices");
  // A code is one byte (filter[0] * filter[1] is at most 2^62 after pool2d_shape's checks).
  if (codes && s.kh * s.kw > 256)
    throw py::value_error(text::cat("filter must have at most 256 taps for window_indices=True; "
                                    "got ", s.kh, "x", s.kw));
  return with_float(dtype_of(x), [&](auto t) -> py::tuple {
    using T = decltype(t);
    return with_index(codes, [&](auto i) -> py::tuple {
      using I = decltype(i);
      py::array y = new_output<T>(pool2d_out_dims(s));
      py::array idx = new_output<I>(pool2d_out_dims(s));
      {
        py::gil_scoped_release nogil;
        cpu::max_pool2d_forward(ptr<T>(y), ptr<I>(idx), cptr<T>(x), s);
      }
      return py::make_tuple(y, idx);
    });
  });
}

py::array max_pool2d_backward(py::handle x_obj, py::handle dy_obj, py::handle idx_obj,
                              Pair filter, Pair stride, Pair padding, py::handle ceil_obj,
                              py::handle window_obj) {
  const py::array x = float_array(x_obj, "x", 4, kX);
  const py::array dy = float_array(dy_obj, "dy", 4, kOut);
  const bool codes = bool_arg(window_obj, "window_indices");
  const py::array idx = pool_indices(idx_obj, codes, kOut);
  check_same_dtype(dy, "dy", x, "x");
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  check_pool_out(shape_of(dy), "dy", s);
  check_pool_out(shape_of(idx), "indices", s);
  return with_index(codes, [&](auto i) -> py::array {
    using I = decltype(i);
    return float_output(dtype_of(x), shape_of(x), [&](auto* dx) {
      cpu::max_pool2d_backward(dx, cptr_like(dx, dy), cptr<I>(idx), s);
    });
  });
}

py::array average_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                                 py::handle ceil_obj, py::handle cip_obj) {
  const py::array x = float_array(x_obj, "x", 4, kX);
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  return float_output(dtype_of(x), pool2d_out_dims(s), [&](auto* y) {
    cpu::average_pool2d_forward(y, cptr_like(y, x), s, cip);
  });
}

py::array average_pool2d_backward(py::handle x_obj, py::handle dy_obj, Pair filter, Pair stride,
                                  Pair padding, py::handle ceil_obj, py::handle cip_obj) {
  const py::array x = float_array(x_obj, "x", 4, kX);
  const py::array dy = float_array(dy_obj, "dy", 4, kOut);
  check_same_dtype(dy, "dy", x, "x");
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  check_pool_out(shape_of(dy), "dy", s);
  return float_output(dtype_of(x), shape_of(x), [&](auto* dx) {
    cpu::average_pool2d_backward(dx, cptr_like(dx, dy), s, cip);
  });
}

}  // namespace

void bind_pool(py::module_& m) {
  def_pool(m, &max_pool2d_forward, &max_pool2d_backward, &average_pool2d_forward,
           &average_pool2d_backward);
}

}  // namespace fastconv::bind
