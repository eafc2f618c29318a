// Bindings for conv2d forward/backward and its scratch size (the GPU twin: cuda_conv.cpp). The
// checks on shapes are shared (shapes.h); here: numpy arrays, dtypes, outputs, the kernel call.
#include <type_traits>

#include "cpu/conv.h"
#include "cpu/winograd_choice.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

Conv2dShape checked_shape(py::array& x, py::array& w, py::handle x_obj, py::handle w_obj,
                          Pair stride, Pair padding, Pair dilation) {
  x = float_array(x_obj, "x", 4, "(N, C, H, W)");
  w = float_array(w_obj, "w", 4, "(K, C, kh, kw)");
  check_same_dtype(w, "w", x, "x");
  return conv2d_shape(shape_of(x), shape_of(w), stride, padding, dilation);
}

// b may be (K,) or (1, K, 1, 1): the layer stores the latter, plain callers pass the former.
py::array checked_bias(py::handle b_obj, const py::array& x, const Conv2dShape& s) {
  auto b = float_array(b_obj, "b", -1, "(K,) or (1, K, 1, 1)");
  check_same_dtype(b, "b", x, "x");
  check_conv_bias(shape_of(b), s.k);
  return b;
}

py::array conv2d_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj, Pair stride,
                         Pair padding, Pair dilation, py::handle relu_obj) {
  const bool relu = bool_arg(relu_obj, "relu");
  py::array x, w, b;
  const Conv2dShape s = checked_shape(x, w, x_obj, w_obj, stride, padding, dilation);
  const bool has_bias = !b_obj.is_none();
  if (has_bias) b = checked_bias(b_obj, x, s);
  return float_output(dtype_of(x), conv2d_out_dims(s), [&](auto* y) {
    cpu::conv2d_forward(y, cptr_like(y, x), cptr_like(y, w), has_bias ? cptr_like(y, b) : nullptr,
                        s, relu);
  });
}

py::tuple conv2d_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj, Pair stride,
                          Pair padding, Pair dilation, py::handle need_dx_obj,
                          py::handle need_db_obj, py::handle relu_y_obj) {
  const bool need_dx = bool_arg(need_dx_obj, "need_dx"), need_db = bool_arg(need_db_obj, "need_db");
  py::array x, w;
  const Conv2dShape s = checked_shape(x, w, x_obj, w_obj, stride, padding, dilation);
  auto dy = float_array(dy_obj, "dy", 4, "(N, K, OH, OW)");
  check_same_dtype(dy, "dy", x, "x");
  check_conv_dy(shape_of(dy), s);
  const std::optional<py::array> relu_y = relu_y_arg(relu_y_obj, dy, 4, "(N, K, OH, OW)");
  return conv_grads_output(dtype_of(x), shape_of(x), shape_of(w), need_dx, need_db,
                           [&](auto* dx, auto* dw, auto* db) {
                             using T = std::remove_pointer_t<decltype(dw)>;
                             cpu::conv2d_backward(dx, dw, db, cptr<T>(x), cptr<T>(w), cptr<T>(dy),
                                                  relu_y ? cptr<T>(*relu_y) : nullptr, s);
                           });
}

std::size_t conv2d_scratch_bytes(py::handle x_obj, py::handle w_obj, Pair stride, Pair padding,
                                 Pair dilation) {
  py::array x, w;
  const Conv2dShape s = checked_shape(x, w, x_obj, w_obj, stride, padding, dilation);
  return cpu::conv2d_scratch_bytes(s, dtype_size(dtype_of(x)));
}

// Which algorithm a forward or backward call on these arguments runs (a testing/benchmark hook).
std::string conv2d_algorithm(py::handle x_obj, py::handle w_obj, Pair stride, Pair padding,
                             Pair dilation) {
  py::array x, w;
  const Conv2dShape s = checked_shape(x, w, x_obj, w_obj, stride, padding, dilation);
  return cpu::conv2d_algorithm(s, dtype_size(dtype_of(x)));
}

}  // namespace

void bind_conv(py::module_& m) {
  def_conv(m, &conv2d_forward, &conv2d_backward, &conv2d_scratch_bytes);
  // The process-wide algorithm setting (fastconv.set_conv_algorithm checks the type first); CPU
  // only: the GPU path is im2col + cuBLAS.
  m.def("set_conv_algorithm", &cpu::set_conv_algorithm, py::arg("algorithm"));
  m.def("conv_algorithm", &cpu::conv_algorithm);
  def_op(m, "_conv2d_algorithm", &conv2d_algorithm, py::arg("x"), py::arg("w"),
         py::arg("stride"), py::arg("padding"), py::arg("dilation"));
}

}  // namespace fastconv::bind
