// The shared index math, exposed so Python asks C++ for output shapes and the tests can check the
// geometry that both backends compile. The kernels may assume a validated geometry; these entry
// points take any Python int, so each checks its arguments' ranges and that nothing it computes
// overflows int64, instead of returning a wrapped number.
#include <pybind11/numpy.h>

#include <cstddef>
#include <cstdint>

#include "fastconv/fastdiv.h"
#include "fastconv/geometry.h"
#include "fastconv/text.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

// The arguments every helper shares: kernel and stride >= 1, padding >= 0.
struct AxisArgs {
  index_t k, s, p;
};

AxisArgs axis_args(py::handle kernel, py::handle stride, py::handle padding) {
  AxisArgs a{int64_arg(kernel, "kernel"), int64_arg(stride, "stride"),
             int64_arg(padding, "padding")};
  check_positive(a.k, "kernel");
  check_positive(a.s, "stride");
  check_non_negative(a.p, "padding");
  return a;
}

index_t positive_int_arg(py::handle obj, const char* name) {
  const index_t v = int64_arg(obj, name);
  check_positive(v, name);
  return v;
}

index_t non_negative_int_arg(py::handle obj, const char* name) {
  const index_t v = int64_arg(obj, name);
  check_non_negative(v, name);
  return v;
}

index_t conv_out_size_py(py::handle size, py::handle kernel, py::handle stride,
                         py::handle padding, py::handle dilation) {
  const index_t in = positive_int_arg(size, "size");
  const AxisArgs a = axis_args(kernel, stride, padding);
  const index_t d = positive_int_arg(dilation, "dilation");
  return conv_axis_size("size", in, a.k, a.s, a.p, d, text::cat(a.p), text::cat(d));
}

index_t pool_out_size_py(py::handle size, py::handle kernel, py::handle stride,
                         py::handle padding, py::handle ceil_mode) {
  const index_t in = positive_int_arg(size, "size");
  const AxisArgs a = axis_args(kernel, stride, padding);
  return pool_axis_size("size", in, a.k, a.s, a.p, bool_arg(ceil_mode, "ceil_mode"),
                        text::cat(a.p));
}

index_t conv_out_coord_py(py::handle i_obj, py::handle tap_obj, py::handle stride,
                          py::handle padding, py::handle dilation, py::handle out_obj) {
  const index_t i = non_negative_int_arg(i_obj, "i"), t = non_negative_int_arg(tap_obj, "tap");
  const index_t s = positive_int_arg(stride, "stride"), p = non_negative_int_arg(padding, "padding");
  const index_t d = positive_int_arg(dilation, "dilation"), out = non_negative_int_arg(out_obj, "out");
  index_t sum;
  if (!try_mul(t, d, &sum))
    throw py::value_error(text::cat("tap * dilation must fit in int64; got tap ", t,
                                    " and dilation ", d));
  if (!try_add(i, p, &sum))
    throw py::value_error(text::cat("i + padding must fit in int64; got i ", i, " and padding ",
                                    p));
  // The policy the GPU kernels take for these values (FastDivU32 and int32 index math where they
  // fit), so the brute-force tests check both.
  using I = FastDivU32::Int;
  if (index32_fits({i + p, s, t * d, out}))
    return conv_out_coord_by(I(i), I(t), FastDivU32(s), I(p), I(d), I(out));
  return conv_out_coord(i, t, s, p, d, out);
}

py::tuple pool_window_py(py::handle o_obj, py::handle kernel, py::handle stride,
                         py::handle padding, py::handle size) {
  const index_t o = non_negative_int_arg(o_obj, "o");
  const AxisArgs a = axis_args(kernel, stride, padding);
  const index_t in = positive_int_arg(size, "size");
  // Any o below either mode's output count starts inside int64. Floor mode can have the more
  // windows where padding exceeds the filter (ceil mode drops windows wholly in the padding).
  const std::string got_p = text::cat(a.p);
  const index_t out = max_i(pool_axis_size("size", in, a.k, a.s, a.p, false, got_p),
                            pool_axis_size("size", in, a.k, a.s, a.p, true, got_p));
  if (o >= out)
    throw py::value_error(text::cat("o must be below the output size ", out,
                                    " (the larger of floor and ceil mode's); got ", o));
  const Window w = pool_window(o, a.k, a.s, a.p, in);
  return py::make_tuple(w.begin, w.end, w.padded_extent);
}

py::tuple pool_outputs_reading_py(py::handle i_obj, py::handle kernel, py::handle stride,
                                  py::handle padding, py::handle out_obj) {
  const index_t i = non_negative_int_arg(i_obj, "i");
  const AxisArgs a = axis_args(kernel, stride, padding);
  const index_t out = non_negative_int_arg(out_obj, "out");
  index_t sum;
  if (!try_add(i, a.p, &sum))
    throw py::value_error(text::cat("i + padding must fit in int64; got i ", i, " and padding ",
                                    a.p));
  // As conv_out_coord_py: the GPU's division policy for these values.
  using I = FastDivU32::Int;
  const OutRange r = index32_fits({i + a.p, a.s, a.k, out})
                         ? pool_outputs_reading_by(I(i), I(a.k), FastDivU32(a.s), I(a.p), I(out))
                         : pool_outputs_reading(i, a.k, a.s, a.p, out);
  return py::make_tuple(r.first, r.last);
}

// FastDivU32 on many dividends at once: (n // d, n % d) for n in [0, 2**31), d in [1, 2**31].
py::tuple fast_divmod_py(py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> n,
                         py::handle d_obj) {
  const index_t d = positive_int_arg(d_obj, "d");
  if (d > kFastDivLimit)
    throw py::value_error(text::cat("d must be at most 2**31; got ", d));
  const auto* v = n.data();
  const auto count = static_cast<std::size_t>(n.size());
  for (std::size_t i = 0; i < count; ++i)
    if (v[i] < 0 || v[i] >= kFastDivLimit)
      throw py::value_error(text::cat("n must hold values in [0, 2**31); got ", v[i]));
  const FastDivU32 by(d);
  py::array_t<std::int64_t> q(n.size()), r(n.size());
  auto* qp = q.mutable_data();
  auto* rp = r.mutable_data();
  for (std::size_t i = 0; i < count; ++i) {
    FastDivU32::Int qi, ri;
    by.divmod(static_cast<FastDivU32::Int>(v[i]), &qi, &ri);
    qp[i] = qi;
    rp[i] = ri;
  }
  return py::make_tuple(q, r);
}

// x and w as arrays or as shapes: a layer can ask for a shape before it holds the data.
py::tuple conv2d_output_shape(py::handle x_obj, py::handle w_obj, Pair stride, Pair padding,
                              Pair dilation) {
  const Dims xs = shape4_arg(x_obj, "x", "(N, C, H, W)");
  const Dims ws = shape4_arg(w_obj, "w", "(K, C, kh, kw)");
  if (py::isinstance<py::array>(x_obj) && py::isinstance<py::array>(w_obj))
    check_same_dtype(py::reinterpret_borrow<py::array>(w_obj), "w",
                     py::reinterpret_borrow<py::array>(x_obj), "x");
  const Conv2dShape s = conv2d_shape(xs, ws, stride, padding, dilation);
  return py::make_tuple(s.n, s.k, s.oh, s.ow);
}

}  // namespace

void bind_geometry(py::module_& m) {
  m.def("conv_out_size", &conv_out_size_py, py::arg("size"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        "floor((size + 2p - d(k-1) - 1) / s) + 1, or 0");
  m.def("pool_out_size", &pool_out_size_py, py::arg("size"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"));
  m.def("conv_out_coord", &conv_out_coord_py, py::arg("i"), py::arg("tap"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("out"));
  m.def("pool_window", &pool_window_py, py::arg("o"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("size"));
  m.def("pool_outputs_reading", &pool_outputs_reading_py, py::arg("i"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("out"));
  m.def("_fast_divmod", &fast_divmod_py, py::arg("n"), py::arg("d"),
        "Tests: fastdiv.h's FastDivU32 on an int64 array: (n // d, n % d).");
  def_op(m, "conv2d_output_shape", &conv2d_output_shape, py::arg("x"), py::arg("w"),
         py::arg("stride"), py::arg("padding"), py::arg("dilation"));
}

}  // namespace fastconv::bind
