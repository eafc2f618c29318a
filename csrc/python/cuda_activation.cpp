// Bindings of relu and dropout on the GPU (the CPU twin: cpu_activation.cpp).
// Device arrays and outputs: cuda_args.h.
#include <cstdint>
#include <string>
#include <utility>

#include "cuda/activation.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

py::object relu_forward(py::handle x_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "");
  DeviceArray y = new_output(x.shape());
  cuda::relu_forward(mp<float>(y), cp<float>(x), x.size());
  return out(std::move(y));
}

py::object relu_backward(py::handle dy_obj, py::handle y_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "");
  const DeviceArray& y = float_dev(y_obj, "y", -1, "");
  check_shape_like(y.shape(), "y", dy.shape(), "dy");
  DeviceArray dx = new_output(dy.shape());
  cuda::relu_backward(mp<float>(dx), cp<float>(dy), cp<float>(y), dy.size());
  return out(std::move(dx));
}

// An int seed, or one int64 in device memory that the kernel reads when it runs (a CUDA graph's
// replays then follow the value the host writes there); its bits are the uint64 seed, so a
// negative value is a seed like any other and nothing is left to check at launch.
cuda::DropoutSeed dropout_seed(py::handle obj) {
  if (!py::isinstance<DeviceArray>(obj)) return {seed_arg(obj), nullptr};
  const DeviceArray& s = obj.cast<const DeviceArray&>();
  if (s.dtype() != DType::i64)
    throw py::type_error(
        "seed must be an int or a one-element int64 device array (0-d or (1,)); got a " +
        std::string(dtype_name(s.dtype())) + " device array");
  if (s.ndim() > 1 || s.size() != 1)
    throw py::value_error(
        "seed must be an int or a one-element int64 device array (0-d or (1,)); got shape " +
        shape_str(s));
  return {0, cp<std::int64_t>(s)};
}

// Dropout's forward and backward are one masked scaling (of x, or of dy): the same checks.
template <bool kBackward>
py::object dropout(py::handle in_obj, const char* name, py::handle ratio_obj,
                   py::handle seed_obj) {
  const DeviceArray& in = float_dev(in_obj, name, -1, "");
  const double ratio = ratio_arg(ratio_obj);
  const cuda::DropoutSeed seed = dropout_seed(seed_obj);
  DeviceArray result = new_output(in.shape());
  if constexpr (kBackward)
    cuda::dropout_backward(mp<float>(result), cp<float>(in), in.size(), ratio, seed);
  else
    cuda::dropout_forward(mp<float>(result), cp<float>(in), in.size(), ratio, seed);
  return out(std::move(result));
}

py::object dropout_forward(py::handle x_obj, py::handle ratio_obj, py::handle seed_obj) {
  return dropout<false>(x_obj, "x", ratio_obj, seed_obj);
}

py::object dropout_backward(py::handle dy_obj, py::handle ratio_obj, py::handle seed_obj) {
  return dropout<true>(dy_obj, "dy", ratio_obj, seed_obj);
}

py::object dropout_mask(py::handle shape_obj, py::handle ratio_obj, py::handle seed_obj,
                        py::handle dtype_obj) {
  Dims shape = shape_arg(shape_obj);
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  dtype_arg(dtype_obj, true);  // float32 only: the mask is always float32
  DeviceArray mask = new_output(std::move(shape));
  cuda::dropout_mask(mp<float>(mask), mask.size(), ratio, seed);
  return out(std::move(mask));
}

}  // namespace

void bind_cuda_activation(py::module_& m) {
  def_activation(m, &relu_forward, &relu_backward, &dropout_forward, &dropout_backward,
                 &dropout_mask);
}

}  // namespace fastconv::bind
