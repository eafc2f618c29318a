// Bindings of max and average pooling on the GPU (the CPU twin: cpu_pool.cpp).
// Argument checks and outputs: cuda_args.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "cuda/pool.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/cuda_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

py::tuple max_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                             py::handle ceil_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  DeviceArray y = new_output({s.n, s.c, s.oh, s.ow});
  DeviceArray idx = new_output({s.n, s.c, s.oh, s.ow}, DType::i64);
  cuda::max_pool2d_forward(mp<float>(y), mp<index_t>(idx), cp<float>(x), s);
  return py::make_tuple(out(std::move(y)), out(std::move(idx)));
}

py::object max_pool2d_backward(py::handle x_obj, py::handle dy_obj, py::handle idx_obj,
                               Pair filter, Pair stride, Pair padding, py::handle ceil_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, "(N, C, OH, OW)");
  const DeviceArray& idx = int64_dev(idx_obj, "indices", 4, "(N, C, OH, OW)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  check_pool_out(dy.shape(), "dy", s);
  check_pool_out(idx.shape(), "indices", s);
  DeviceArray dx = new_output(x.shape());
  cuda::max_pool2d_backward(mp<float>(dx), cp<float>(dy), cp<index_t>(idx), s);
  return out(std::move(dx));
}

py::object average_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                                  py::handle ceil_obj, py::handle cip_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  DeviceArray y = new_output({s.n, s.c, s.oh, s.ow});
  cuda::average_pool2d_forward(mp<float>(y), cp<float>(x), s, cip);
  return out(std::move(y));
}

py::object average_pool2d_backward(py::handle x_obj, py::handle dy_obj, Pair filter,
                                   Pair stride, Pair padding, py::handle ceil_obj,
                                   py::handle cip_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, "(N, C, OH, OW)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  check_pool_out(dy.shape(), "dy", s);
  DeviceArray dx = new_output(x.shape());
  cuda::average_pool2d_backward(mp<float>(dx), cp<float>(dy), s, cip);
  return out(std::move(dx));
}

}  // namespace

void bind_cuda_pool(py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward, py::arg("x"), py::arg("filter"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"));
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("x"), py::arg("dy"),
        py::arg("indices"), py::arg("filter"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"));
  m.def("average_pool2d_forward", &average_pool2d_forward, py::arg("x"), py::arg("filter"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"));
  m.def("average_pool2d_backward", &average_pool2d_backward, py::arg("x"), py::arg("dy"),
        py::arg("filter"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"));
}

}  // namespace fastconv::bind
