// Bindings for the dense layer (x (N, In), w (In, Out), b (Out,) or (1, Out)) and for bias over
// the channel axis of N x C x ... arrays (the GPU twin: cuda_dense.cpp). The checks on shapes
// are shared (shapes.h); here: numpy arrays, dtypes, outputs, the kernel call.
#include <optional>

#include "cpu/dense.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

struct DenseArgs {
  py::array x, w;
  DenseShape s;
};

DenseArgs dense_args(py::handle x_obj, py::handle w_obj) {
  DenseArgs a;
  a.x = float_array(x_obj, "x", 2, "(N, In)");
  a.w = float_array(w_obj, "w", 2, "(In, Out)");
  check_same_dtype(a.w, "w", a.x, "x");
  a.s = dense_shape(shape_of(a.x), shape_of(a.w));
  // Before any output is allocated: dx alone is as big as x.
  cpu::check_dense_dims(a.s.n, a.s.in, a.s.out);
  return a;
}

py::array dense_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj,
                        py::handle relu_obj) {
  const bool relu = bool_arg(relu_obj, "relu");
  const DenseArgs a = dense_args(x_obj, w_obj);
  const DenseShape s = a.s;
  std::optional<py::array> b;
  if (!b_obj.is_none()) {
    b = float_array(b_obj, "b", -1, "(Out,) or (1, Out)");
    check_same_dtype(*b, "b", a.x, "x");
    check_dense_bias(shape_of(*b), s);
  }
  return float_output(dtype_of(a.x), {s.n, s.out}, [&](auto* y) {
    cpu::dense_forward(y, cptr_like(y, a.x), cptr_like(y, a.w), b ? cptr_like(y, *b) : nullptr,
                       s.n, s.in, s.out, relu);
  });
}

py::tuple dense_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj,
                         py::handle need_dx_obj, py::handle need_db_obj, py::handle relu_y_obj) {
  const DenseArgs a = dense_args(x_obj, w_obj);
  const DenseShape s = a.s;
  const bool need_dx = bool_arg(need_dx_obj, "need_dx");
  const bool need_db = bool_arg(need_db_obj, "need_db");
  const py::array dy = float_array(dy_obj, "dy", 2, "(N, Out)");
  check_same_dtype(dy, "dy", a.x, "x");
  check_dense_dy(shape_of(dy), s);
  const std::optional<py::array> relu_y = relu_y_arg(relu_y_obj, dy, 2, "(N, Out)");
  return with_float(dtype_of(a.x), [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    std::optional<py::array> dx, db;
    if (need_dx) dx = new_output<T>({s.n, s.in});
    if (need_db) db = new_output<T>({s.out});
    py::array dw = new_output<T>({s.in, s.out});
    T* dxp = dx ? ptr<T>(*dx) : nullptr;
    T* dbp = db ? ptr<T>(*db) : nullptr;
    {
      py::gil_scoped_release nogil;
      cpu::dense_backward(dxp, ptr<T>(dw), dbp, cptr<T>(a.x), cptr<T>(a.w), cptr<T>(dy),
                          relu_y ? cptr<T>(*relu_y) : nullptr, s.n, s.in, s.out);
    }
    py::object none = py::none();
    return py::make_tuple(dx ? py::object(*dx) : none, dw, db ? py::object(*db) : none);
  });
}

py::array bias_add(py::handle x_obj, py::handle b_obj) {
  const py::array x = float_array(x_obj, "x", -1, "(N, C, ...)");
  const ChannelView v = channel_view(shape_of(x), "x");
  const py::array b = float_array(b_obj, "b", -1, "with C elements");
  check_same_dtype(b, "b", x, "x");
  check_bias_elements(shape_of(b), v.c);
  return float_output(dtype_of(x), shape_of(x), [&](auto* y) {
    cpu::bias_add(y, cptr_like(y, x), cptr_like(y, b), v.n, v.c, v.inner);
  });
}

py::array bias_grad(py::handle dy_obj) {
  const py::array dy = float_array(dy_obj, "dy", -1, "(N, C, ...)");
  const ChannelView v = channel_view(shape_of(dy), "dy");
  return float_output(dtype_of(dy), {v.c}, [&](auto* db) {
    cpu::bias_grad(db, cptr_like(db, dy), v.n, v.c, v.inner);
  });
}

}  // namespace

void bind_dense(py::module_& m) {
  def_dense(m, &dense_forward, &dense_backward, &bias_add, &bias_grad);
}

}  // namespace fastconv::bind
