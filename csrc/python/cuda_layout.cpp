// Private hooks (underscore names) to conv2d's layout passes on the GPU, one kernel each, for the
// tests (tests/test_layout_cuda.py checks them against numpy) and the per-kernel benchmark rows
// (benchmarks/op_rows.py's helper rows, in GB/s and % of copy). The whole batch is one group.
#include "cuda/conv_layout.h"
#include "fastconv/text.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

// The geometry of a conv of x with a (1, C, kh, kw) filter: the output channels do not matter.
Conv2dShape layout_conv(const DeviceArray& x, Pair kernel, Pair stride, Pair padding,
                        Pair dilation) {
  const Dims& d = x.shape();
  return conv2d_shape(d, Dims{1, d[1], kernel[0], kernel[1]}, stride, padding, dilation);
}

py::object im2col(py::handle x_obj, Pair kernel, Pair stride, Pair padding, Pair dilation) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const Conv2dShape s = layout_conv(x, kernel, stride, padding, dilation);
  DeviceArray col = new_output({s.col_rows(), s.n * s.out_plane()});
  cuda::im2col(mp<float>(col), cp<float>(x), s, s.n);
  return out(std::move(col));
}

// dx has x's shape; x itself is not read.
py::object col2im(py::handle col_obj, py::handle x_obj, Pair kernel, Pair stride, Pair padding,
                  Pair dilation) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const Conv2dShape s = layout_conv(x, kernel, stride, padding, dilation);
  const DeviceArray& col = float_dev(col_obj, "col", 2, "(C*kh*kw, N*OH*OW)");
  check_shape_like(col.shape(), "col", Dims{s.col_rows(), s.n * s.out_plane()},
                   "the im2col matrix of x");
  DeviceArray dx = new_output(x.shape());
  cuda::col2im(mp<float>(dx), cp<float>(col), s, s.n);
  return out(std::move(dx));
}

// m (K, N*P) -> (N, K, P), + b (K,) when given.
py::object gemm_to_nchw(py::handle m_obj, py::handle b_obj, py::handle n_obj,
                        py::handle relu_obj) {
  const bool relu = bool_arg(relu_obj, "relu");
  const index_t n = int64_arg(n_obj, "n");
  check_positive(n, "n");
  const DeviceArray& m = float_dev(m_obj, "m", 2, "(K, N*P)");
  const index_t k = m.shape()[0], cols = m.shape()[1];
  if (cols % n != 0)
    throw py::value_error(text::cat("n must divide m.shape[1] = ", cols, "; got ", n));
  const float* b = nullptr;
  if (!b_obj.is_none()) {
    const DeviceArray& bias = float_dev(b_obj, "b", 1, "(K,)");
    check_bias_elements(bias.shape(), k);
    b = cp<float>(bias);
  }
  DeviceArray y = new_output({n, k, cols / n});
  cuda::gemm_to_nchw(mp<float>(y), cp<float>(m), b, n, k, cols / n, relu);
  return out(std::move(y));
}

// dy (N, K, ...) -> (K, N*P), through relu_y's mask when given.
py::object nchw_to_gemm(py::handle dy_obj, py::handle relu_y_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "(N, K, ...)");
  const ChannelView v = channel_view(dy.shape(), "dy");
  const float* relu_y = nullptr;
  if (!relu_y_obj.is_none()) {
    const DeviceArray& r = float_dev(relu_y_obj, "relu_y", -1, "dy's shape");
    check_shape_like(r.shape(), "relu_y", dy.shape(), "dy");
    relu_y = cp<float>(r);
  }
  DeviceArray m = new_output({v.c, v.n * v.inner});
  cuda::nchw_to_gemm(mp<float>(m), cp<float>(dy), relu_y, v.n, v.c, v.inner);
  return out(std::move(m));
}

}  // namespace

void bind_cuda_layout(py::module_& m) {
  m.def("_im2col", &im2col, py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"),
        "Tests and benchmarks: x's im2col matrix (C*kh*kw, N*OH*OW), one kernel.");
  m.def("_col2im", &col2im, py::arg("col"), py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"),
        "Tests and benchmarks: the gather col2im of col into an array of x's shape.");
  m.def("_gemm_to_nchw", &gemm_to_nchw, py::arg("m"), py::arg("b"), py::arg("n"),
        py::arg("relu"),
        "Tests and benchmarks: (K, N*P) -> (N, K, P), + b if given, clamped at 0 with relu.");
  m.def("_nchw_to_gemm", &nchw_to_gemm, py::arg("dy"), py::arg("relu_y"),
        "Tests and benchmarks: (N, K, ...) -> (K, N*P), masked where relu_y <= 0 if given.");
}

}  // namespace fastconv::bind
