// Bindings for max and average 2-D pooling.
#include <cstdint>
#include <string>

#include "cpu/pool.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

// An array laid out like the pooling output: (N, C, OH, OW) of x's batch and channels.
std::vector<index_t> out_shape(const Pool2dShape& s) { return {s.n, s.c, s.oh, s.ow}; }
std::vector<index_t> in_shape(const Pool2dShape& s) { return {s.n, s.c, s.h, s.w}; }

py::tuple max_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                             py::handle ceil_obj) {
  auto x = float_array(x_obj, "x", 4, "(N, C, H, W)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  return with_float(dtype_of(x), [&](auto t) -> py::tuple {
    using T = decltype(t);
    py::array y = new_output<T>(out_shape(s));
    py::array idx = new_output<std::int64_t>(out_shape(s));
    {
      py::gil_scoped_release nogil;
      cpu::max_pool2d_forward(ptr<T>(y), ptr<index_t>(idx), cptr<T>(x), s);
    }
    return py::make_tuple(y, idx);
  });
}

py::array max_pool2d_backward(py::handle x_obj, py::handle dy_obj, py::handle idx_obj,
                              Pair filter, Pair stride, Pair padding, py::handle ceil_obj) {
  auto x = float_array(x_obj, "x", 4, "(N, C, H, W)");
  auto dy = float_array(dy_obj, "dy", 4, "(N, C, OH, OW)");
  auto idx = int_array(idx_obj, "indices", 4, "(N, C, OH, OW)");
  check_same_dtype(dy, "dy", x, "x");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  check_pool_out(shape_of(dy), "dy", s);
  check_pool_out(shape_of(idx), "indices", s);
  // Other integer widths are widened; a stray index cannot fault, it just never matches.
  if (!idx.dtype().is(py::dtype::of<std::int64_t>()))
    idx = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(idx);
  return with_float(dtype_of(x), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array dx = new_output<T>(in_shape(s));
    {
      py::gil_scoped_release nogil;
      cpu::max_pool2d_backward(ptr<T>(dx), cptr<T>(dy), cptr<index_t>(idx), s);
    }
    return dx;
  });
}

py::array average_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                                 py::handle ceil_obj, py::handle cip_obj) {
  auto x = float_array(x_obj, "x", 4, "(N, C, H, W)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  return with_float(dtype_of(x), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array y = new_output<T>(out_shape(s));
    {
      py::gil_scoped_release nogil;
      cpu::average_pool2d_forward(ptr<T>(y), cptr<T>(x), s, cip);
    }
    return y;
  });
}

py::array average_pool2d_backward(py::handle x_obj, py::handle dy_obj, Pair filter, Pair stride,
                                  Pair padding, py::handle ceil_obj, py::handle cip_obj) {
  auto x = float_array(x_obj, "x", 4, "(N, C, H, W)");
  auto dy = float_array(dy_obj, "dy", 4, "(N, C, OH, OW)");
  check_same_dtype(dy, "dy", x, "x");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  check_pool_out(shape_of(dy), "dy", s);
  return with_float(dtype_of(x), [&](auto t) -> py::array {
    using T = decltype(t);
    py::array dx = new_output<T>(in_shape(s));
    {
      py::gil_scoped_release nogil;
      cpu::average_pool2d_backward(ptr<T>(dx), cptr<T>(dy), s, cip);
    }
    return dx;
  });
}

}  // namespace

void bind_pool(py::module_& m) {
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
