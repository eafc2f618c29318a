// Bindings for the dense layer (x (N, In), w (In, Out), b (Out,) or (1, Out)) and for bias over
// the channel axis of N x C x ... arrays.
#include <optional>
#include <string>
#include <tuple>

#include "cpu/dense.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

struct DenseArgs {
  py::array x, w;
  index_t n, in, out;
};

DenseArgs dense_args(py::handle x_obj, py::handle w_obj) {
  DenseArgs a;
  a.x = float_array(x_obj, "x", 2, "(N, In)");
  a.w = float_array(w_obj, "w", 2, "(In, Out)");
  check_same_dtype(a.w, "w", a.x, "x");
  a.n = a.x.shape(0);
  a.in = a.x.shape(1);
  a.out = a.w.shape(1);
  check_positive(a.n, "x.shape[0] (the batch N)");
  check_positive(a.in, "x.shape[1] (the inputs In)");
  check_dim(a.w, "w", 0, a.in, "x's inputs In");
  check_positive(a.out, "w.shape[1] (the outputs Out)");
  return a;
}

py::array dense_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj) {
  auto a = dense_args(x_obj, w_obj);
  std::optional<py::array> b;
  if (!b_obj.is_none()) {
    b = float_array(b_obj, "b", -1, "(Out,) or (1, Out)");
    check_same_dtype(*b, "b", a.x, "x");
    const bool ok = (b->ndim() == 1 && b->shape(0) == a.out) ||
                    (b->ndim() == 2 && b->shape(0) == 1 && b->shape(1) == a.out);
    if (!ok)
      throw py::value_error("b must have shape (" + std::to_string(a.out) + ",) or (1, " +
                            std::to_string(a.out) + ") (w's outputs Out); got " +
                            shape_str(*b));
  }
  return with_float(dtype_of(a.x), [&](auto tag) -> py::array {
    using T = decltype(tag);
    py::array y = new_output<T>({a.n, a.out});
    {
      py::gil_scoped_release nogil;
      cpu::dense_forward(ptr<T>(y), cptr<T>(a.x), cptr<T>(a.w), b ? cptr<T>(*b) : nullptr, a.n,
                         a.in, a.out);
    }
    return y;
  });
}

py::tuple dense_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj,
                         py::handle need_dx_obj, py::handle need_db_obj) {
  auto a = dense_args(x_obj, w_obj);
  const bool need_dx = bool_arg(need_dx_obj, "need_dx");
  const bool need_db = bool_arg(need_db_obj, "need_db");
  auto dy = float_array(dy_obj, "dy", 2, "(N, Out)");
  check_same_dtype(dy, "dy", a.x, "x");
  check_dim(dy, "dy", 0, a.n, "x's batch N");
  check_dim(dy, "dy", 1, a.out, "w's outputs Out");
  return with_float(dtype_of(a.x), [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    std::optional<py::array> dx, db;
    if (need_dx) dx = new_output<T>({a.n, a.in});
    if (need_db) db = new_output<T>({a.out});
    py::array dw = new_output<T>({a.in, a.out});
    T* dxp = dx ? ptr<T>(*dx) : nullptr;
    T* dbp = db ? ptr<T>(*db) : nullptr;
    {
      py::gil_scoped_release nogil;
      cpu::dense_backward(dxp, ptr<T>(dw), dbp, cptr<T>(a.x), cptr<T>(a.w), cptr<T>(dy), a.n,
                          a.in, a.out);
    }
    py::object none = py::none();
    return py::make_tuple(dx ? py::object(*dx) : none, dw, db ? py::object(*db) : none);
  });
}

// (N, C, inner) view of an array of rank >= 2.
py::array bias_add(py::handle x_obj, py::handle b_obj) {
  auto x = float_array(x_obj, "x", -1, "(N, C, ...)");
  auto [n, c, inner] = channel_view(shape_of(x), "x");
  auto b = float_array(b_obj, "b", -1, "with C elements");
  check_same_dtype(b, "b", x, "x");
  if (b.size() != c)
    throw py::value_error("b must have " + std::to_string(c) +
                          " elements (x's channels C = x.shape[1]); got shape " + shape_str(b));
  return with_float(dtype_of(x), [&](auto tag) -> py::array {
    using T = decltype(tag);
    py::array y = new_output<T>(shape_of(x));
    {
      py::gil_scoped_release nogil;
      cpu::bias_add(ptr<T>(y), cptr<T>(x), cptr<T>(b), n, c, inner);
    }
    return y;
  });
}

py::array bias_grad(py::handle dy_obj) {
  auto dy = float_array(dy_obj, "dy", -1, "(N, C, ...)");
  auto [n, c, inner] = channel_view(shape_of(dy), "dy");
  return with_float(dtype_of(dy), [&](auto tag) -> py::array {
    using T = decltype(tag);
    py::array db = new_output<T>({c});
    {
      py::gil_scoped_release nogil;
      cpu::bias_grad(ptr<T>(db), cptr<T>(dy), n, c, inner);
    }
    return db;
  });
}

}  // namespace

void bind_dense(py::module_& m) {
  m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("dense_backward", &dense_backward, py::arg("x"), py::arg("w"), py::arg("dy"),
        py::arg("need_dx") = true, py::arg("need_db") = true);
  m.def("bias_add", &bias_add, py::arg("x"), py::arg("b"));
  m.def("bias_grad", &bias_grad, py::arg("dy"));
}

}  // namespace fastconv::bind
