// Bindings for relu and dropout (the GPU twin: cuda_activation.cpp).
#include <cstdint>

#include "cpu/activation.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

py::array relu_forward(py::handle x_obj) {
  const py::array x = float_array(x_obj, "x", -1, "");
  return float_output(dtype_of(x), shape_of(x),
                      [&](auto* y) { cpu::relu_forward(y, cptr_like(y, x), x.size()); });
}

py::array relu_backward(py::handle dy_obj, py::handle y_obj) {
  const py::array dy = float_array(dy_obj, "dy", -1, "");
  const py::array y = float_array(y_obj, "y", -1, "");
  check_same_dtype(y, "y", dy, "dy");
  check_shape_like(shape_of(y), "y", shape_of(dy), "dy");
  return float_output(dtype_of(dy), shape_of(dy), [&](auto* dx) {
    cpu::relu_backward(dx, cptr_like(dx, dy), cptr_like(dx, y), dy.size());
  });
}

// Dropout's forward and backward are one masked scaling (of x, or of dy): the same checks.
template <bool kBackward>
py::array dropout(py::handle in_obj, const char* name, py::handle ratio_obj, py::handle seed_obj) {
  const py::array in = float_array(in_obj, name, -1, "");
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  return float_output(dtype_of(in), shape_of(in), [&](auto* out) {
    if constexpr (kBackward)
      cpu::dropout_backward(out, cptr_like(out, in), in.size(), ratio, seed);
    else
      cpu::dropout_forward(out, cptr_like(out, in), in.size(), ratio, seed);
  });
}

py::array dropout_forward(py::handle x_obj, py::handle ratio_obj, py::handle seed_obj) {
  return dropout<false>(x_obj, "x", ratio_obj, seed_obj);
}

py::array dropout_backward(py::handle dy_obj, py::handle ratio_obj, py::handle seed_obj) {
  return dropout<true>(dy_obj, "dy", ratio_obj, seed_obj);
}

py::array dropout_mask(py::handle shape_obj, py::handle ratio_obj, py::handle seed_obj,
                       py::handle dtype_obj) {
  const Dims shape = shape_arg(shape_obj);
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  const DType dt = dtype_arg(dtype_obj, false);
  index_t count = 1;  // shape_arg checked that it fits
  for (index_t d : shape) count *= d;
  return float_output(dt, shape, [&](auto* mask) { cpu::dropout_mask(mask, count, ratio, seed); });
}

}  // namespace

void bind_activation(py::module_& m) {
  def_activation(m, &relu_forward, &relu_backward, &dropout_forward, &dropout_backward,
                 &dropout_mask);
}

}  // namespace fastconv::bind
