#include "python/shapes.h"

#include <string>

namespace fastconv::bind {
namespace {

void check_pair(const Pair& p, const char* name, index_t least) {
  if (p[0] < least || p[1] < least)
    throw py::value_error(std::string(name) + " must be >= " + std::to_string(least) +
                          " in both dimensions; got (" + std::to_string(p[0]) + ", " +
                          std::to_string(p[1]) + ")");
}

}  // namespace

Conv2dShape conv2d_shape(const py::array& x, const py::array& w, Pair stride, Pair padding,
                         Pair dilation) {
  check_same_dtype(w, "w", x, "x");
  return conv2d_shape(shape_of(x), shape_of(w), stride, padding, dilation);
}

Conv2dShape conv2d_shape(const Dims& x, const Dims& w, Pair stride, Pair padding, Pair dilation) {
  check_dim(w, "w", 1, x[1], "x's channels");
  check_pair(stride, "stride", 1);
  check_pair(padding, "padding", 0);
  check_pair(dilation, "dilation", 1);
  check_positive(x[0], "x.shape[0] (batch)");
  check_positive(x[1], "x.shape[1] (channels)");
  check_positive(w[0], "w.shape[0] (output channels)");
  check_positive(w[2], "w.shape[2] (kernel height)");
  check_positive(w[3], "w.shape[3] (kernel width)");
  Conv2dShape s{};
  s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3];
  s.k = w[0], s.kh = w[2], s.kw = w[3];
  s.sh = stride[0], s.sw = stride[1], s.ph = padding[0], s.pw = padding[1];
  s.dh = dilation[0], s.dw = dilation[1];
  s.oh = conv_out_size(s.h, s.kh, s.sh, s.ph, s.dh);
  s.ow = conv_out_size(s.w, s.kw, s.sw, s.pw, s.dw);
  check_output_size(s.oh, "height", s.h, s.kh, s.sh, s.ph, s.dh);
  check_output_size(s.ow, "width", s.w, s.kw, s.sw, s.pw, s.dw);
  return s;
}

Pool2dShape pool2d_shape(const py::array& x, Pair filter, Pair stride, Pair padding,
                         bool ceil_mode) {
  return pool2d_shape(shape_of(x), filter, stride, padding, ceil_mode);
}

Pool2dShape pool2d_shape(const Dims& x, Pair filter, Pair stride, Pair padding, bool ceil_mode) {
  check_pair(filter, "filter", 1);
  check_pair(stride, "stride", 1);
  check_pair(padding, "padding", 0);
  if (2 * padding[0] > filter[0] || 2 * padding[1] > filter[1])
    throw py::value_error("padding must be at most half the filter size; got padding (" +
                          std::to_string(padding[0]) + ", " + std::to_string(padding[1]) +
                          ") for filter (" + std::to_string(filter[0]) + ", " +
                          std::to_string(filter[1]) + ")");
  check_positive(x[0], "x.shape[0] (batch)");
  check_positive(x[1], "x.shape[1] (channels)");
  Pool2dShape s{};
  s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3];
  s.kh = filter[0], s.kw = filter[1], s.sh = stride[0], s.sw = stride[1];
  s.ph = padding[0], s.pw = padding[1];
  s.oh = pool_out_size(s.h, s.kh, s.sh, s.ph, ceil_mode);
  s.ow = pool_out_size(s.w, s.kw, s.sw, s.pw, ceil_mode);
  check_output_size(s.oh, "height", s.h, s.kh, s.sh, s.ph, 1);
  check_output_size(s.ow, "width", s.w, s.kw, s.sw, s.pw, 1);
  return s;
}

}  // namespace fastconv::bind
