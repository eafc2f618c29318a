// Bindings for the fused conv2d + ReLU + 2x2 max pool (CPU only: on the GPU the ops layer
// refuses it). The convolution's checks are conv2d's (shapes.h); the pooled arrays must have
// the pooled output's shape.
#include <cstdint>
#include <type_traits>

#include "cpu/conv_pool.h"
#include "fastconv/text.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/pool_indices.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

const char* const kPooled = "(N, K, OH // 2, OW // 2)";

Conv2dShape checked_shape(py::array& x, py::array& w, py::handle x_obj, py::handle w_obj,
                          Pair stride, Pair padding, Pair dilation) {
  x = float_array(x_obj, "x", 4, "(N, C, H, W)");
  w = float_array(w_obj, "w", 4, "(K, C, kh, kw)");
  check_same_dtype(w, "w", x, "x");
  const Conv2dShape s = conv2d_shape(shape_of(x), shape_of(w), stride, padding, dilation);
  if (s.oh < 2 || s.ow < 2)
    throw py::value_error(text::cat(
        "the convolution's output must be at least 2x2 (the max pool's window); got ", s.oh, "x",
        s.ow, " from x.shape[2:] ", s.h, "x", s.w, " with this w, stride, padding and dilation"));
  return s;
}

Dims pooled_dims(const Conv2dShape& s) {
  const Pool2dShape p = cpu::conv_pool_shape(s);
  return {p.n, p.c, p.oh, p.ow};
}

py::tuple forward(py::handle x_obj, py::handle w_obj, py::handle b_obj, Pair stride,
                  Pair padding, Pair dilation, py::handle window_obj) {
  py::array x, w, b;
  const Conv2dShape s = checked_shape(x, w, x_obj, w_obj, stride, padding, dilation);
  const bool has_bias = !b_obj.is_none();
  if (has_bias) {
    b = float_array(b_obj, "b", -1, "(K,) or (1, K, 1, 1)");
    check_same_dtype(b, "b", x, "x");
    check_conv_bias(shape_of(b), s.k);
  }
  const bool codes = bool_arg(window_obj, "window_indices");
  return with_float(dtype_of(x), [&](auto t) -> py::tuple {
    using T = decltype(t);
    return with_index(codes, [&](auto i) -> py::tuple {
      using I = decltype(i);
      py::array y = new_output<T>(pooled_dims(s));
      py::array idx = new_output<I>(pooled_dims(s));
      {
        py::gil_scoped_release nogil;
        cpu::conv2d_relu_max_pool2d_forward(ptr<T>(y), ptr<I>(idx), cptr<T>(x), cptr<T>(w),
                                            has_bias ? cptr<T>(b) : nullptr, s);
      }
      return py::make_tuple(y, idx);
    });
  });
}

py::tuple backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj, py::handle y_obj,
                   py::handle idx_obj, Pair stride, Pair padding, Pair dilation,
                   py::handle need_dx_obj, py::handle need_db_obj, py::handle window_obj) {
  const bool need_dx = bool_arg(need_dx_obj, "need_dx"), need_db = bool_arg(need_db_obj, "need_db");
  py::array x, w;
  const Conv2dShape s = checked_shape(x, w, x_obj, w_obj, stride, padding, dilation);
  const Dims pooled = pooled_dims(s);
  const py::array dy = float_array(dy_obj, "dy", 4, kPooled);
  check_same_dtype(dy, "dy", x, "x");
  check_shape_like(shape_of(dy), "dy", pooled, "the pooled output");
  const py::array y = float_array(y_obj, "y", 4, kPooled);
  check_same_dtype(y, "y", x, "x");
  check_shape_like(shape_of(y), "y", pooled, "the pooled output");
  const bool codes = bool_arg(window_obj, "window_indices");
  const py::array idx = pool_indices(idx_obj, codes, kPooled);
  check_shape_like(shape_of(idx), "indices", pooled, "the pooled output");
  return with_index(codes, [&](auto i) -> py::tuple {
    using I = decltype(i);
    return conv_grads_output(dtype_of(x), shape_of(x), shape_of(w), need_dx, need_db,
                             [&](auto* dx, auto* dw, auto* db) {
                               using T = std::remove_pointer_t<decltype(dw)>;
                               cpu::conv2d_relu_max_pool2d_backward(
                                   dx, dw, db, cptr<T>(x), cptr<T>(w), cptr<T>(dy), cptr<T>(y),
                                   cptr<I>(idx), s);
                             });
  });
}

}  // namespace

void bind_conv_pool(py::module_& m) {
  def_op(m, "conv2d_relu_max_pool2d_forward", &forward, py::arg("x"), py::arg("w"), py::arg("b"),
         py::arg("stride"), py::arg("padding"), py::arg("dilation"),
         py::arg("window_indices") = false);
  def_op(m, "conv2d_relu_max_pool2d_backward", &backward, py::arg("x"), py::arg("w"),
         py::arg("dy"), py::arg("y"), py::arg("indices"), py::arg("stride"), py::arg("padding"),
         py::arg("dilation"), py::arg("need_dx"), py::arg("need_db"),
         py::arg("window_indices") = false);
}

}  // namespace fastconv::bind
