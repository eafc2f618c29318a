// Bindings of conv2d forward/backward and its scratch size on the GPU (the CPU twin: cpu_conv.cpp).
// The checks on shapes are shared (shapes.h); device arrays and outputs: cuda_args.h.
#include <optional>
#include <string>

#include "cuda/conv.h"
#include "cuda/conv_choice.h"
#include "cuda/conv_implicit.h"
#include "fastconv/text.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

Conv2dShape checked_conv(py::handle x_obj, py::handle w_obj, Pair stride, Pair padding,
                         Pair dilation, const DeviceArray** x, const DeviceArray** w) {
  *x = &float_dev(x_obj, "x", 4, "(N, C, H, W)");
  *w = &float_dev(w_obj, "w", 4, "(K, C, kh, kw)");
  return conv2d_shape((*x)->shape(), (*w)->shape(), stride, padding, dilation);
}

// b may be (K,) or (1, K, 1, 1), as on the CPU.
const DeviceArray& checked_conv_bias(py::handle b_obj, const Conv2dShape& s) {
  const DeviceArray& b = float_dev(b_obj, "b", -1, "(K,) or (1, K, 1, 1)");
  check_conv_bias(b.shape(), s.k);
  return b;
}

py::object conv2d_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj, Pair stride,
                          Pair padding, Pair dilation, py::handle relu_obj) {
  const bool relu = bool_arg(relu_obj, "relu");
  const DeviceArray *x, *w;
  const Conv2dShape s = checked_conv(x_obj, w_obj, stride, padding, dilation, &x, &w);
  const float* b = b_obj.is_none() ? nullptr : cp<float>(checked_conv_bias(b_obj, s));
  DeviceArray y = new_output(conv2d_out_dims(s));
  cuda::conv2d_forward(mp<float>(y), cp<float>(*x), cp<float>(*w), b, s, relu);
  return out(std::move(y));
}

py::tuple conv2d_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj, Pair stride,
                          Pair padding, Pair dilation, py::handle need_dx_obj,
                          py::handle need_db_obj, py::handle relu_y_obj) {
  // Strict bools: pybind11's caster would read need_dx=None as False and 'no' as a signature dump.
  const bool need_dx = bool_arg(need_dx_obj, "need_dx");
  const bool need_db = bool_arg(need_db_obj, "need_db");
  const DeviceArray *x, *w;
  const Conv2dShape s = checked_conv(x_obj, w_obj, stride, padding, dilation, &x, &w);
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, "(N, K, OH, OW)");
  check_conv_dy(dy.shape(), s);
  const float* relu_y = nullptr;
  if (!relu_y_obj.is_none()) {
    const DeviceArray& r = float_dev(relu_y_obj, "relu_y", 4, "(N, K, OH, OW)");
    check_shape_like(r.shape(), "relu_y", dy.shape(), "dy");
    relu_y = cp<float>(r);
  }
  DeviceArray dw = new_output(w->shape());
  std::optional<DeviceArray> dx, db;
  if (need_dx) dx = new_output(x->shape());
  if (need_db) db = new_output({s.k});
  cuda::conv2d_backward(dx ? mp<float>(*dx) : nullptr, mp<float>(dw),
                        db ? mp<float>(*db) : nullptr, cp<float>(*x), cp<float>(*w),
                        cp<float>(dy), relu_y, s);
  return py::make_tuple(dx ? out(std::move(*dx)) : py::none(), out(std::move(dw)),
                        db ? out(std::move(*db)) : py::none());
}

std::size_t conv2d_scratch_bytes(py::handle x_obj, py::handle w_obj, Pair stride, Pair padding,
                                 Pair dilation) {
  const DeviceArray *x, *w;
  return cuda::conv2d_scratch_bytes(
      checked_conv(x_obj, w_obj, stride, padding, dilation, &x, &w));
}

// The names of ConvKernel, in its order.
constexpr const char* kKernelNames[] = {"auto", "im2col", "implicit"};

cuda::ConvKernel conv_kernel_arg(py::handle name) {
  if (!py::isinstance<py::str>(name))
    throw py::type_error(text::cat("kernel must be a str; got ",
                                   py::str(py::type::handle_of(name).attr("__name__"))
                                       .cast<std::string>()));
  const std::string s = name.cast<std::string>();
  for (int i = 0; i < 3; ++i)
    if (s == kKernelNames[i]) return static_cast<cuda::ConvKernel>(i);
  throw py::value_error(text::cat("kernel must be 'auto', 'im2col' or 'implicit'; got ",
                                  py::repr(name).cast<std::string>()));
}

std::string conv_kernel_name(cuda::ConvKernel kernel) {
  return kKernelNames[static_cast<int>(kernel)];
}

// One dict a measured shape: what was timed, the median milliseconds of each candidate that ran
// (keys "im2col", "implicit", and for the backward with dx "implicit_dx", "implicit_both") and
// the one chosen.
constexpr const char* kCandidates[] = {"im2col", "implicit", "implicit_dx", "implicit_both"};

py::list autotune_table() {
  py::list rows;
  for (const cuda::ConvTiming& t : cuda::conv2d_autotune_table()) {
    const Conv2dShape& s = t.shape;
    py::dict row, ms;
    row["pass"] = t.pass == cuda::ConvPass::forward ? "forward" : "backward";
    row["x"] = py::make_tuple(s.n, s.c, s.h, s.w);
    row["w"] = py::make_tuple(s.k, s.c, s.kh, s.kw);
    row["stride"] = py::make_tuple(s.sh, s.sw);
    row["padding"] = py::make_tuple(s.ph, s.pw);
    row["dilation"] = py::make_tuple(s.dh, s.dw);
    row["need_dx"] = t.need_dx;
    row["tf32"] = t.tf32;
    for (std::size_t c = 0; c < t.median_ms.size(); ++c)
      if (t.median_ms[c] >= 0) ms[kCandidates[c]] = t.median_ms[c];
    row["median_ms"] = ms;
    row["chosen"] = kCandidates[t.chosen];
    rows.append(row);
  }
  return rows;
}

// A choice to remember, checked as a conv call checks its shapes.
void remember_choice(py::handle pass, py::handle x_shape, py::handle w_shape, Pair stride,
                     Pair padding, Pair dilation, py::handle need_dx, py::handle tf32,
                     py::handle chosen) {
  cuda::ConvTiming t{};
  const std::string p = py::isinstance<py::str>(pass) ? pass.cast<std::string>() : "";
  if (p != "forward" && p != "backward")
    throw py::value_error(text::cat("pass must be 'forward' or 'backward'; got ",
                                    py::repr(pass).cast<std::string>()));
  t.pass = p == "forward" ? cuda::ConvPass::forward : cuda::ConvPass::backward;
  t.shape = conv2d_shape(shape4_arg(x_shape, "x_shape", "(N, C, H, W)"),
                         shape4_arg(w_shape, "w_shape", "(K, C, kh, kw)"), stride, padding,
                         dilation);
  t.need_dx = bool_arg(need_dx, "need_dx");
  t.tf32 = bool_arg(tf32, "tf32");
  const int count = t.pass == cuda::ConvPass::forward ? 2 : 4;
  const std::string name = py::isinstance<py::str>(chosen) ? chosen.cast<std::string>() : "";
  for (int c = 0; c < count; ++c)
    if (name == kCandidates[c]) {
      t.chosen = static_cast<unsigned>(c);
      cuda::remember_conv2d_choice(t);
      return;
    }
  throw py::value_error(text::cat(
      "chosen must be a candidate of the ", p, " pass ('im2col', 'implicit'",
      count == 4 ? ", 'implicit_dx', 'implicit_both'" : "", "); got ",
      py::repr(chosen).cast<std::string>()));
}

}  // namespace

void bind_cuda_conv(py::module_& m) {
  def_conv(m, &conv2d_forward, &conv2d_backward, &conv2d_scratch_bytes);
  m.def("_set_conv_column_budget", [](py::handle bytes) {
    const index_t v = int64_arg(bytes, "bytes");
    if (v < 0) throw py::value_error(text::cat("bytes must be >= 0; got ", v));
    cuda::set_conv2d_column_budget(static_cast<std::size_t>(v));
  }, py::arg("bytes"), "Benchmark hook: a conv group's scratch budget in bytes (0: half the L2).");
  m.def("_set_conv_forward_kernel", [](py::handle name) {
    cuda::set_conv2d_forward_kernel(conv_kernel_arg(name));
  }, py::arg("name"),
        "Benchmark hook: conv2d's forward kernel, 'auto' (measured per shape), 'im2col' "
        "(im2col + cuBLAS) or 'implicit' (the implicit-GEMM kernel where it supports the shape).");
  m.def("_conv_forward_kernel", [] { return conv_kernel_name(cuda::conv2d_forward_kernel()); },
        "The conv2d forward kernel that _set_conv_forward_kernel chose.");
  m.def("_set_conv_backward_kernel", [](py::handle name) {
    cuda::set_conv2d_backward_kernel(conv_kernel_arg(name));
  }, py::arg("name"),
        "Benchmark hook: conv2d's backward kernels (dx, and dw with db), 'auto' (measured per "
        "shape), 'im2col' (im2col + cuBLAS + col2im) or 'implicit' (the implicit-GEMM kernels "
        "where they support the shape).");
  m.def("_conv_backward_kernel", [] { return conv_kernel_name(cuda::conv2d_backward_kernel()); },
        "The conv2d backward kernels that _set_conv_backward_kernel chose.");
  m.def("set_conv_autotune", [](py::handle on) { cuda::set_conv2d_autotune(bool_arg(on, "on")); },
        py::arg("on"),
        "Choose conv2d's kernels per shape by timing them (fastconv.set_conv_autotune).");
  m.def("conv_autotune", &cuda::conv2d_autotune);
  m.def("_conv_autotune_table", &autotune_table,
        "What conv autotuning has timed: a dict per shape and pass, with each candidate's median "
        "milliseconds and the one chosen.");
  m.def("_clear_conv_autotune", &cuda::clear_conv2d_autotune_table,
        "Test hook: forget every timed shape, so that each is timed again.");
  m.def("_remember_conv_choice", &remember_choice, py::arg("pass_"), py::arg("x_shape"),
        py::arg("w_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("need_dx"), py::arg("tf32"), py::arg("chosen"),
        "Remember a conv kernel choice as if autotuning had timed it (a row of "
        "_conv_autotune_table: a saved table, or a test's).");
  m.def("_set_conv_implicit_index64", [](py::handle on) {
    cuda::set_conv2d_implicit_index64(bool_arg(on, "on"));
  }, py::arg("on"), "Test hook: the implicit conv kernel's int64 index math for every shape.");
}

}  // namespace fastconv::bind
