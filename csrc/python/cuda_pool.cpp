// Bindings of max and average pooling on the GPU (the CPU twin: cpu_pool.cpp). The checks on
// shapes are shared (shapes.h); device arrays and outputs: cuda_args.h.
#include <utility>

#include "cuda/pool.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

const char* const kX = "(N, C, H, W)";
const char* const kOut = "(N, C, OH, OW)";

Pool2dShape geometry(const DeviceArray& x, Pair filter, Pair stride, Pair padding,
                     py::handle ceil_obj) {
  return pool2d_shape(x.shape(), filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
}

// Window codes (the CPU's window_indices=True) have no GPU kernel: device indices are int64.
void check_flat_indices(py::handle window_obj) {
  if (bool_arg(window_obj, "window_indices"))
    throw py::value_error(
        "window_indices must be False for device arrays (window indices are CPU-only; the GPU "
        "uses int64 flat indices); got True");
}

py::tuple max_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                             py::handle ceil_obj, py::handle window_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, kX);
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  check_flat_indices(window_obj);
  DeviceArray y = new_output(pool2d_out_dims(s));
  DeviceArray idx = new_output(pool2d_out_dims(s), DType::i64);
  cuda::max_pool2d_forward(mp<float>(y), mp<index_t>(idx), cp<float>(x), s);
  return py::make_tuple(out(std::move(y)), out(std::move(idx)));
}

py::object max_pool2d_backward(py::handle x_obj, py::handle dy_obj, py::handle idx_obj,
                               Pair filter, Pair stride, Pair padding, py::handle ceil_obj,
                               py::handle window_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, kX);
  check_flat_indices(window_obj);
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, kOut);
  const DeviceArray& idx = int64_dev(idx_obj, "indices", 4, kOut);
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  check_pool_out(dy.shape(), "dy", s);
  check_pool_out(idx.shape(), "indices", s);
  DeviceArray dx = new_output(x.shape());
  cuda::max_pool2d_backward(mp<float>(dx), cp<float>(dy), cp<index_t>(idx), s);
  return out(std::move(dx));
}

py::object average_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                                  py::handle ceil_obj, py::handle cip_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, kX);
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  DeviceArray y = new_output(pool2d_out_dims(s));
  cuda::average_pool2d_forward(mp<float>(y), cp<float>(x), s, cip);
  return out(std::move(y));
}

py::object average_pool2d_backward(py::handle x_obj, py::handle dy_obj, Pair filter,
                                   Pair stride, Pair padding, py::handle ceil_obj,
                                   py::handle cip_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, kX);
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, kOut);
  const Pool2dShape s = geometry(x, filter, stride, padding, ceil_obj);
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  check_pool_out(dy.shape(), "dy", s);
  DeviceArray dx = new_output(x.shape());
  cuda::average_pool2d_backward(mp<float>(dx), cp<float>(dy), s, cip);
  return out(std::move(dx));
}

}  // namespace

void bind_cuda_pool(py::module_& m) {
  def_pool(m, &max_pool2d_forward, &max_pool2d_backward, &average_pool2d_forward,
           &average_pool2d_backward);
}

}  // namespace fastconv::bind
