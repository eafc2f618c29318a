// Bindings of the dense layer and bias on the GPU (the CPU twin: cpu_dense.cpp).
// Argument checks and outputs: cuda_args.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <vector>

#include "cuda/dense.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/cuda_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

struct DenseArgs {
  const DeviceArray *x, *w;
  index_t n, in, out;
};

DenseArgs dense_args(py::handle x_obj, py::handle w_obj) {
  DenseArgs a;
  a.x = &float_dev(x_obj, "x", 2, "(N, In)");
  a.w = &float_dev(w_obj, "w", 2, "(In, Out)");
  a.n = a.x->dim(0);
  a.in = a.x->dim(1);
  a.out = a.w->dim(1);
  check_positive(a.n, "x.shape[0] (the batch N)");
  check_positive(a.in, "x.shape[1] (the inputs In)");
  check_dim(*a.w, "w", 0, a.in, "x's inputs In");
  check_positive(a.out, "w.shape[1] (the outputs Out)");
  return a;
}

py::object dense_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj) {
  const DenseArgs a = dense_args(x_obj, w_obj);
  const float* b = nullptr;
  if (!b_obj.is_none()) {
    const DeviceArray& bb = float_dev(b_obj, "b", -1, "(Out,) or (1, Out)");
    const auto& d = bb.shape();
    const bool ok = (d.size() == 1 && d[0] == a.out) ||
                    (d.size() == 2 && d[0] == 1 && d[1] == a.out);
    if (!ok)
      throw py::value_error("b must have shape (" + std::to_string(a.out) + ",) or (1, " +
                            std::to_string(a.out) + ") (w's outputs Out); got " +
                            shape_str(bb));
    b = cp<float>(bb);
  }
  DeviceArray y = new_output({a.n, a.out});
  cuda::dense_forward(mp<float>(y), cp<float>(*a.x), cp<float>(*a.w), b, a.n, a.in, a.out);
  return out(std::move(y));
}

py::tuple dense_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj,
                         py::handle need_dx_obj, py::handle need_db_obj) {
  const bool need_dx = bool_arg(need_dx_obj, "need_dx");
  const bool need_db = bool_arg(need_db_obj, "need_db");
  const DenseArgs a = dense_args(x_obj, w_obj);
  const DeviceArray& dy = float_dev(dy_obj, "dy", 2, "(N, Out)");
  check_dim(dy, "dy", 0, a.n, "x's batch N");
  check_dim(dy, "dy", 1, a.out, "w's outputs Out");
  std::optional<DeviceArray> dx, db;
  if (need_dx) dx = new_output({a.n, a.in});
  if (need_db) db = new_output({a.out});
  DeviceArray dw = new_output({a.in, a.out});
  cuda::dense_backward(dx ? mp<float>(*dx) : nullptr, mp<float>(dw),
                       db ? mp<float>(*db) : nullptr, cp<float>(*a.x), cp<float>(*a.w),
                       cp<float>(dy), a.n, a.in, a.out);
  return py::make_tuple(dx ? out(std::move(*dx)) : py::none(), out(std::move(dw)),
                        db ? out(std::move(*db)) : py::none());
}

py::object bias_add(py::handle x_obj, py::handle b_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "(N, C, ...)");
  const ChannelView v = channel_view(x.shape(), "x");
  const DeviceArray& b = float_dev(b_obj, "b", -1, "with C elements");
  if (b.size() != v.c)
    throw py::value_error("b must have " + std::to_string(v.c) +
                          " elements (x's channels C = x.shape[1]); got shape " + shape_str(b));
  DeviceArray y = new_output(x.shape());
  cuda::bias_add(mp<float>(y), cp<float>(x), cp<float>(b), v.n, v.c, v.inner);
  return out(std::move(y));
}

py::object bias_grad(py::handle dy_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "(N, C, ...)");
  const ChannelView v = channel_view(dy.shape(), "dy");
  DeviceArray db = new_output({v.c});
  cuda::bias_grad(mp<float>(db), cp<float>(dy), nullptr, v.n, v.c, v.inner);
  return out(std::move(db));
}

}  // namespace

void bind_cuda_dense(py::module_& m) {
  m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("dense_backward", &dense_backward, py::arg("x"), py::arg("w"), py::arg("dy"),
        py::arg("need_dx") = true, py::arg("need_db") = true);
  m.def("bias_add", &bias_add, py::arg("x"), py::arg("b"));
  m.def("bias_grad", &bias_grad, py::arg("dy"));
}

}  // namespace fastconv::bind
