// Bindings of the dense layer and bias on the GPU (the CPU twin: cpu_dense.cpp). The checks on
// shapes are shared (shapes.h); device arrays and outputs: cuda_args.h.
#include <optional>
#include <utility>

#include "cuda/dense.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

struct DenseArgs {
  const DeviceArray *x, *w;
  DenseShape s;
};

DenseArgs dense_args(py::handle x_obj, py::handle w_obj) {
  DenseArgs a;
  a.x = &float_dev(x_obj, "x", 2, "(N, In)");
  a.w = &float_dev(w_obj, "w", 2, "(In, Out)");
  a.s = dense_shape(a.x->shape(), a.w->shape());
  return a;
}

py::object dense_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj,
                         py::handle relu_obj) {
  const bool relu = bool_arg(relu_obj, "relu");
  const DenseArgs a = dense_args(x_obj, w_obj);
  const DenseShape s = a.s;
  const float* b = nullptr;
  if (!b_obj.is_none()) {
    const DeviceArray& bb = float_dev(b_obj, "b", -1, "(Out,) or (1, Out)");
    check_dense_bias(bb.shape(), s);
    b = cp<float>(bb);
  }
  DeviceArray y = new_output({s.n, s.out});
  cuda::dense_forward(mp<float>(y), cp<float>(*a.x), cp<float>(*a.w), b, s.n, s.in, s.out,
                      relu);
  return out(std::move(y));
}

py::tuple dense_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj,
                         py::handle need_dx_obj, py::handle need_db_obj, py::handle relu_y_obj) {
  const bool need_dx = bool_arg(need_dx_obj, "need_dx");
  const bool need_db = bool_arg(need_db_obj, "need_db");
  const DenseArgs a = dense_args(x_obj, w_obj);
  const DenseShape s = a.s;
  const DeviceArray& dy = float_dev(dy_obj, "dy", 2, "(N, Out)");
  check_dense_dy(dy.shape(), s);
  const float* relu_y = nullptr;
  if (!relu_y_obj.is_none()) {
    const DeviceArray& r = float_dev(relu_y_obj, "relu_y", 2, "(N, Out)");
    check_shape_like(r.shape(), "relu_y", dy.shape(), "dy");
    relu_y = cp<float>(r);
  }
  std::optional<DeviceArray> dx, db;
  if (need_dx) dx = new_output({s.n, s.in});
  if (need_db) db = new_output({s.out});
  DeviceArray dw = new_output({s.in, s.out});
  cuda::dense_backward(dx ? mp<float>(*dx) : nullptr, mp<float>(dw),
                       db ? mp<float>(*db) : nullptr, cp<float>(*a.x), cp<float>(*a.w),
                       cp<float>(dy), relu_y, s.n, s.in, s.out);
  return py::make_tuple(dx ? out(std::move(*dx)) : py::none(), out(std::move(dw)),
                        db ? out(std::move(*db)) : py::none());
}

py::object bias_add(py::handle x_obj, py::handle b_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "(N, C, ...)");
  const ChannelView v = channel_view(x.shape(), "x");
  const DeviceArray& b = float_dev(b_obj, "b", -1, "with C elements");
  check_bias_elements(b.shape(), v.c);
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
  def_dense(m, &dense_forward, &dense_backward, &bias_add, &bias_grad);
}

}  // namespace fastconv::bind
