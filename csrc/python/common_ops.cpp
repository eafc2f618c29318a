// Each op's checks on shapes (shapes.h), beyond the conv and pooling geometry of
// common_shapes.cpp: what the CPU and CUDA bindings of an op check alike.
#include <string>

#include "fastconv/text.h"
#include "python/shapes.h"

namespace fastconv::bind {

Dims conv2d_out_dims(const Conv2dShape& s) { return {s.n, s.k, s.oh, s.ow}; }

void check_conv_dy(const Dims& dy, const Conv2dShape& s) {
  if (dy != conv2d_out_dims(s))
    throw py::value_error("dy must have the output's shape " + dims_str(conv2d_out_dims(s)) +
                          "; got " + dims_str(dy));
}

Dims pool2d_out_dims(const Pool2dShape& s) { return {s.n, s.c, s.oh, s.ow}; }

void check_pool_out(const Dims& shape, const char* name, const Pool2dShape& s) {
  check_dim(shape, name, 0, s.n, "x's batch");
  check_dim(shape, name, 1, s.c, "x's channels");
  check_dim(shape, name, 2, s.oh, "the output height");
  check_dim(shape, name, 3, s.ow, "the output width");
}

DenseShape dense_shape(const Dims& x, const Dims& w) {
  const DenseShape s{x[0], x[1], w[1]};
  check_positive(s.n, "x.shape[0] (the batch N)");
  check_positive(s.in, "x.shape[1] (the inputs In)");
  check_dim(w, "w", 0, s.in, "x's inputs In");
  check_positive(s.out, "w.shape[1] (the outputs Out)");
  return s;
}

void check_dense_bias(const Dims& b, const DenseShape& s) {
  const bool ok = (b.size() == 1 && b[0] == s.out) ||
                  (b.size() == 2 && b[0] == 1 && b[1] == s.out);
  if (!ok)
    throw py::value_error("b must have shape (" + std::to_string(s.out) + ",) or (1, " +
                          std::to_string(s.out) + ") (w's outputs Out); got " + dims_str(b));
}

void check_dense_dy(const Dims& dy, const DenseShape& s) {
  check_dim(dy, "dy", 0, s.n, "x's batch N");
  check_dim(dy, "dy", 1, s.out, "w's outputs Out");
}

ChannelView channel_view(const Dims& shape, const char* name) {
  if (shape.size() < 2)
    throw py::value_error(std::string(name) +
                          " must have at least 2 dimensions (N, C, ...); got shape " +
                          dims_str(shape));
  index_t inner = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) inner *= shape[i];
  if (shape[0] == 0 || shape[1] == 0 || inner == 0)
    throw py::value_error(std::string(name) + " must not be empty; got shape " + dims_str(shape));
  return {shape[0], shape[1], inner};
}

void check_bias_elements(const Dims& b, index_t c) {
  index_t count = 1;  // the shape of an existing array: its product fits
  for (index_t d : b) count *= d;
  if (count != c)
    throw py::value_error("b must have " + std::to_string(c) +
                          " elements (x's channels C = x.shape[1]); got shape " + dims_str(b));
}

void check_logits(const Dims& z) {
  check_positive(z[0], "z.shape[0] (the batch N)");
  check_positive(z[1], "z.shape[1] (the classes C)");
}

void check_dataset(const Dims& data) {
  if (data.empty())
    throw py::value_error("data must have at least 1 dimension (rows, ...); got shape " +
                          dims_str(data));
}

void check_indices(const std::int64_t* indices, index_t count, index_t rows) {
  for (index_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= rows)
      throw py::value_error(text::cat("indices must be in [0, ", rows, ") (data's rows); got ",
                                      indices[i], " at position ", i));
}

}  // namespace fastconv::bind
