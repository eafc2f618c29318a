// The shared index math, exposed so Python asks C++ for output shapes and the tests can check the
// geometry that both backends compile.
#include "fastconv/geometry.h"
#include "python/cpu_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {

void bind_geometry(py::module_& m) {
  m.def("conv_out_size", &conv_out_size, py::arg("size"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), "floor((size + 2p - d(k-1) - 1) / s) + 1, or 0");
  m.def("pool_out_size", &pool_out_size, py::arg("size"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"));
  m.def("conv_out_coord", &conv_out_coord, py::arg("i"), py::arg("tap"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("out"));
  m.def("pool_window", [](index_t o, index_t k, index_t s, index_t p, index_t in) {
    Window w = pool_window(o, k, s, p, in);
    return py::make_tuple(w.begin, w.end, w.padded_extent);
  }, py::arg("o"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("size"));
  m.def("pool_outputs_reading", [](index_t i, index_t k, index_t s, index_t p, index_t out) {
    OutRange r = pool_outputs_reading(i, k, s, p, out);
    return py::make_tuple(r.first, r.last);
  }, py::arg("i"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("out"));
  m.def("conv2d_output_shape",
        [](py::handle x_obj, py::handle w_obj, Pair stride, Pair padding, Pair dilation) {
          auto x = float_array(x_obj, "x", 4, "(N, C, H, W)");
          auto w = float_array(w_obj, "w", 4, "(K, C, kh, kw)");
          Conv2dShape s = conv2d_shape(x, w, stride, padding, dilation);
          return py::make_tuple(s.n, s.k, s.oh, s.ow);
        }, py::arg("x"), py::arg("w"), py::arg("stride"), py::arg("padding"), py::arg("dilation"));
  m.def("pool2d_output_shape",
        [](py::handle x_obj, Pair filter, Pair stride, Pair padding, bool ceil_mode) {
          auto x = float_array(x_obj, "x", 4, "(N, C, H, W)");
          Pool2dShape s = pool2d_shape(x, filter, stride, padding, ceil_mode);
          return py::make_tuple(s.n, s.c, s.oh, s.ow);
        }, py::arg("x"), py::arg("filter"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"));
}

}  // namespace fastconv::bind
