// Bindings of the CUDA kernels on fastconv._cuda: the same names, argument names, order and
// return conventions as the CPU module's (cpu_*.cpp), taking and returning DeviceArrays. Every
// argument is checked here, as on the CPU, with TypeError/ValueError messages naming it; the GPU
// takes float32 only (float64 stays on the CPU), and a numpy array among device arrays is a
// TypeError, never a silent copy.
//
// The GIL stays held: a call only queues kernels on the stream (microseconds), so releasing it
// would cost more than it frees, and the caching allocator then never sees two threads at once.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cuda/conv2d.h"
#include "cuda/dense.h"
#include "cuda/device_array.h"
#include "cuda/elementwise.h"
#include "cuda/pool.h"
#include "cuda/softmax_ce.h"
#include "fastconv/text.h"
#include "python/args.h"
#include "python/checks.h"
#include "python/cuda_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

using cuda::DeviceArray;
using DevType = cuda::DType;

// ---- arguments ------------------------------------------------------------------------------

std::string shape_str(const DeviceArray& a) { return dims_str(a.shape()); }

// Any DeviceArray: None, numpy arrays (host memory among device arrays) and other objects are
// TypeErrors naming the argument.
DeviceArray& device_arg(py::handle obj, const char* name) {
  if (obj.is_none())
    throw py::type_error(std::string(name) + " must be a fastconv device array, got None");
  if (py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) +
                         " must be a fastconv device array (this is a GPU kernel: host and device "
                         "arrays cannot be mixed in one call; move it with "
                         "fastconv.device.to_device(" + name + ")); got a numpy (host) array");
  if (!py::isinstance<DeviceArray>(obj))
    throw py::type_error(std::string(name) + " must be a fastconv device array; got " +
                         type_name(obj));
  return obj.cast<DeviceArray&>();
}

void check_rank(const DeviceArray& a, const char* name, int ndim, const char* layout) {
  if (ndim >= 0 && a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D " + layout +
                          "; got shape " + shape_str(a));
}

// A float32 device array of the given rank (ndim < 0: any rank).
DeviceArray& float_dev(py::handle obj, const char* name, int ndim, const char* layout) {
  DeviceArray& a = device_arg(obj, name);
  if (a.dtype() == DevType::f64)
    throw py::type_error(std::string(name) +
                         " must have dtype float32 (the GPU kernels take float32 only; float64 "
                         "stays on the CPU: use a numpy array there); got float64");
  if (a.dtype() != DevType::f32)
    throw py::type_error(std::string(name) + " must have dtype float32; got " +
                         cuda::dtype_name(a.dtype()));
  check_rank(a, name, ndim, layout);
  return a;
}

// An int64 device array of the given rank.
DeviceArray& int64_dev(py::handle obj, const char* name, int ndim, const char* layout) {
  DeviceArray& a = device_arg(obj, name);
  if (a.dtype() != DevType::i64)
    throw py::type_error(std::string(name) + " must have dtype int64 on the GPU; got " +
                         cuda::dtype_name(a.dtype()));
  check_rank(a, name, ndim, layout);
  return a;
}

// The shared shape checks (checks.h, shapes.h), for device arrays.
using bind::check_dim;
using bind::check_shape_like;
using bind::pool2d_shape;

void check_dim(const DeviceArray& a, const char* name, int axis, index_t expected,
               const char* what) {
  check_dim(a.shape(), name, axis, expected, what);
}

void check_shape_like(const DeviceArray& a, const char* name, const DeviceArray& ref,
                      const char* ref_name) {
  check_shape_like(a.shape(), name, ref.shape(), ref_name);
}

Pool2dShape pool2d_shape(const DeviceArray& x, Pair filter, Pair stride, Pair padding,
                         bool ceil_mode) {
  return pool2d_shape(x.shape(), filter, stride, padding, ceil_mode);
}

// Outputs: device memory from the caching allocator; in poison mode (tests) NaN, or the lowest
// int64, so that an element a kernel forgets to write fails the comparison.
DeviceArray new_output(std::vector<index_t> shape, DevType dt = DevType::f32) {
  DeviceArray a(std::move(shape), dt);
  if (poison_outputs()) {
    if (dt == DevType::i64)
      cuda::fill(a.data<std::int64_t>(), a.size(), std::numeric_limits<std::int64_t>::lowest());
    else
      cuda::fill(a.data<float>(), a.size(), std::numeric_limits<float>::quiet_NaN());
  }
  return a;
}

py::object out(DeviceArray a) { return py::cast(std::move(a)); }

template <typename T>
const T* cp(const DeviceArray& a) {
  return a.data<T>();
}
template <typename T>
T* mp(const DeviceArray& a) {
  return a.data<T>();
}

// ---- conv2d ---------------------------------------------------------------------------------

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
  DeviceArray y = new_output({s.n, s.k, s.oh, s.ow});
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
  if (dy.shape() != std::vector<index_t>{s.n, s.k, s.oh, s.ow})
    throw py::value_error("dy must have the output's shape " +
                          dims_str({s.n, s.k, s.oh, s.ow}) + "; got " + shape_str(dy));
  const float* relu_y = nullptr;
  if (!relu_y_obj.is_none()) {
    const DeviceArray& r = float_dev(relu_y_obj, "relu_y", 4, "(N, K, OH, OW)");
    check_shape_like(r, "relu_y", dy, "dy");
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

// ---- pooling --------------------------------------------------------------------------------

void check_pool_out(const DeviceArray& a, const char* name, const Pool2dShape& s) {
  check_dim(a, name, 0, s.n, "x's batch");
  check_dim(a, name, 1, s.c, "x's channels");
  check_dim(a, name, 2, s.oh, "the output height");
  check_dim(a, name, 3, s.ow, "the output width");
}

py::tuple max_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                             py::handle ceil_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  DeviceArray y = new_output({s.n, s.c, s.oh, s.ow});
  DeviceArray idx = new_output({s.n, s.c, s.oh, s.ow}, DevType::i64);
  cuda::max_pool2d_forward(mp<float>(y), mp<index_t>(idx), cp<float>(x), s);
  return py::make_tuple(out(std::move(y)), out(std::move(idx)));
}

py::object max_pool2d_backward(py::handle x_obj, py::handle dy_obj, py::handle idx_obj,
                               Pair filter, Pair stride, Pair padding, py::handle ceil_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, "(N, C, OH, OW)");
  const DeviceArray& idx = int64_dev(idx_obj, "indices", 4, "(N, C, OH, OW)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  check_pool_out(dy, "dy", s);
  check_pool_out(idx, "indices", s);
  DeviceArray dx = new_output(x.shape());
  cuda::max_pool2d_backward(mp<float>(dx), cp<float>(dy), cp<index_t>(idx), s);
  return out(std::move(dx));
}

py::object average_pool2d_forward(py::handle x_obj, Pair filter, Pair stride, Pair padding,
                                  py::handle ceil_obj, py::handle cip_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  DeviceArray y = new_output({s.n, s.c, s.oh, s.ow});
  cuda::average_pool2d_forward(mp<float>(y), cp<float>(x), s, cip);
  return out(std::move(y));
}

py::object average_pool2d_backward(py::handle x_obj, py::handle dy_obj, Pair filter,
                                   Pair stride, Pair padding, py::handle ceil_obj,
                                   py::handle cip_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 4, "(N, C, H, W)");
  const DeviceArray& dy = float_dev(dy_obj, "dy", 4, "(N, C, OH, OW)");
  const Pool2dShape s = pool2d_shape(x, filter, stride, padding, bool_arg(ceil_obj, "ceil_mode"));
  const bool cip = bool_arg(cip_obj, "count_include_pad");
  check_pool_out(dy, "dy", s);
  DeviceArray dx = new_output(x.shape());
  cuda::average_pool2d_backward(mp<float>(dx), cp<float>(dy), s, cip);
  return out(std::move(dx));
}

// ---- softmax cross-entropy ------------------------------------------------------------------

const DeviceArray& logits(py::handle z_obj) {
  const DeviceArray& z = float_dev(z_obj, "z", 2, "(N, C)");
  check_positive(z.dim(0), "z.shape[0] (the batch N)");
  check_positive(z.dim(1), "z.shape[1] (the classes C)");
  return z;
}

// (N, C) float32 target weights, or (N,) int64 labels: the form is chosen by t's rank.
struct Targets {
  const DeviceArray* t;
  bool is_labels;
};

Targets targets(py::handle t_obj, const DeviceArray& z) {
  const DeviceArray& t = device_arg(t_obj, "t");
  if (t.ndim() == 2) {
    float_dev(t_obj, "t", 2, "(N, C)");
    check_shape_like(t, "t", z, "z");
    return {&t, false};
  }
  if (t.ndim() != 1)
    throw py::value_error("t must be (N, C) target weights or (N,) integer labels; got shape " +
                          shape_str(t));
  if (t.dtype() != DevType::i64)
    throw py::type_error("t must have an integer dtype (int64 on the GPU) for (N,) labels; got " +
                         std::string(cuda::dtype_name(t.dtype())));
  check_dim(t, "t", 0, z.dim(0), "z's batch N");
  return {&t, true};
}

// The kernels report the first row holding a label outside [0, C); that one label is fetched
// only then (the error path), to say which it was, in the CPU binding's words.
void raise_bad_label(index_t row, const DeviceArray& labels, index_t c) {
  if (row < 0) return;
  std::int64_t label = 0;
  labels.read_elements(row, 1, &label);
  throw py::value_error(text::cat("t must hold labels in [0, ", c, ") (z's classes C); got label ",
                                  label, " at row ", row));
}

// Dense targets: the kernels report the flat index i * C + j of the first weight that is
// negative or not finite; its value is fetched only then.
void raise_bad_weight(index_t flat, const DeviceArray& t, index_t c) {
  if (flat < 0) return;
  float w = 0.0f;
  t.read_elements(flat, 1, &w);
  throw py::value_error(text::cat("t must hold finite target weights >= 0; got ", float_str(w),
                                  " at row ", flat / c, ", column ", flat % c));
}

py::object softmax_ce_forward(py::handle z_obj, py::handle t_obj) {
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  const index_t n = z.dim(0), c = z.dim(1);
  DeviceArray loss = new_output({});
  if (t.is_labels)
    raise_bad_label(cuda::softmax_ce_forward(mp<float>(loss), cp<float>(z),
                                             cp<std::int64_t>(*t.t), n, c),
                    *t.t, c);
  else
    raise_bad_weight(cuda::softmax_ce_forward(mp<float>(loss), cp<float>(z), cp<float>(*t.t), n, c),
                     *t.t, c);
  return out(std::move(loss));
}

py::object softmax_ce_backward(py::handle z_obj, py::handle t_obj, py::handle dloss_obj) {
  const double dloss = real_arg(dloss_obj, "dloss");
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  const index_t n = z.dim(0), c = z.dim(1);
  DeviceArray dz = new_output(z.shape());
  if (t.is_labels)
    raise_bad_label(cuda::softmax_ce_backward(mp<float>(dz), cp<float>(z),
                                              cp<std::int64_t>(*t.t), float(dloss), n, c),
                    *t.t, c);
  else
    raise_bad_weight(cuda::softmax_ce_backward(mp<float>(dz), cp<float>(z), cp<float>(*t.t),
                                               float(dloss), n, c),
                     *t.t, c);
  return out(std::move(dz));
}

// ---- dense and bias -------------------------------------------------------------------------

struct DenseArgs {
  const DeviceArray *x, *w;
  index_t n, in, out;
};

DenseArgs dense_args(py::handle x_obj, py::handle w_obj) {
  DenseArgs a;
  a.x = &float_dev(x_obj, "x", 2, "(N, In)");
  a.w = &float_dev(w_obj, "w", 2, "(In, Out)");
  a.n = a.x->dim(0);
  a.in = a.x->dim(1);
  a.out = a.w->dim(1);
  check_positive(a.n, "x.shape[0] (the batch N)");
  check_positive(a.in, "x.shape[1] (the inputs In)");
  check_dim(*a.w, "w", 0, a.in, "x's inputs In");
  check_positive(a.out, "w.shape[1] (the outputs Out)");
  return a;
}

py::object dense_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj) {
  const DenseArgs a = dense_args(x_obj, w_obj);
  const float* b = nullptr;
  if (!b_obj.is_none()) {
    const DeviceArray& bb = float_dev(b_obj, "b", -1, "(Out,) or (1, Out)");
    const auto& d = bb.shape();
    const bool ok = (d.size() == 1 && d[0] == a.out) ||
                    (d.size() == 2 && d[0] == 1 && d[1] == a.out);
    if (!ok)
      throw py::value_error("b must have shape (" + std::to_string(a.out) + ",) or (1, " +
                            std::to_string(a.out) + ") (w's outputs Out); got " +
                            shape_str(bb));
    b = cp<float>(bb);
  }
  DeviceArray y = new_output({a.n, a.out});
  cuda::dense_forward(mp<float>(y), cp<float>(*a.x), cp<float>(*a.w), b, a.n, a.in, a.out);
  return out(std::move(y));
}

py::tuple dense_backward(py::handle x_obj, py::handle w_obj, py::handle dy_obj,
                         py::handle need_dx_obj, py::handle need_db_obj) {
  const bool need_dx = bool_arg(need_dx_obj, "need_dx");
  const bool need_db = bool_arg(need_db_obj, "need_db");
  const DenseArgs a = dense_args(x_obj, w_obj);
  const DeviceArray& dy = float_dev(dy_obj, "dy", 2, "(N, Out)");
  check_dim(dy, "dy", 0, a.n, "x's batch N");
  check_dim(dy, "dy", 1, a.out, "w's outputs Out");
  std::optional<DeviceArray> dx, db;
  if (need_dx) dx = new_output({a.n, a.in});
  if (need_db) db = new_output({a.out});
  DeviceArray dw = new_output({a.in, a.out});
  cuda::dense_backward(dx ? mp<float>(*dx) : nullptr, mp<float>(dw),
                       db ? mp<float>(*db) : nullptr, cp<float>(*a.x), cp<float>(*a.w),
                       cp<float>(dy), a.n, a.in, a.out);
  return py::make_tuple(dx ? out(std::move(*dx)) : py::none(), out(std::move(dw)),
                        db ? out(std::move(*db)) : py::none());
}

// (N, C, inner) view of an array of rank >= 2, non-empty.
struct ChannelView {
  index_t n, c, inner;
};

ChannelView channel_view(const DeviceArray& a, const char* name) {
  if (a.ndim() < 2)
    throw py::value_error(std::string(name) +
                          " must have at least 2 dimensions (N, C, ...); got shape " +
                          shape_str(a));
  if (a.size() == 0)
    throw py::value_error(std::string(name) + " must not be empty; got shape " + shape_str(a));
  index_t inner = 1;
  for (int i = 2; i < a.ndim(); ++i) inner *= a.dim(i);
  return {a.dim(0), a.dim(1), inner};
}

py::object bias_add(py::handle x_obj, py::handle b_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "(N, C, ...)");
  const ChannelView v = channel_view(x, "x");
  const DeviceArray& b = float_dev(b_obj, "b", -1, "with C elements");
  if (b.size() != v.c)
    throw py::value_error("b must have " + std::to_string(v.c) +
                          " elements (x's channels C = x.shape[1]); got shape " + shape_str(b));
  DeviceArray y = new_output(x.shape());
  cuda::bias_add(mp<float>(y), cp<float>(x), cp<float>(b), v.n, v.c, v.inner);
  return out(std::move(y));
}

py::object bias_grad(py::handle dy_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "(N, C, ...)");
  const ChannelView v = channel_view(dy, "dy");
  DeviceArray db = new_output({v.c});
  cuda::bias_grad(mp<float>(db), cp<float>(dy), nullptr, v.n, v.c, v.inner);
  return out(std::move(db));
}

// ---- relu and dropout -----------------------------------------------------------------------

// The mask's dtype: float32 only on the GPU.
void check_mask_dtype(py::handle obj) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    throw py::type_error("dtype must be float32; got " + type_name(obj));
  }
  if (!dt.is(py::dtype::of<float>()))
    throw py::type_error("dtype must be float32 (the GPU kernels take float32 only); got " +
                         py::str(dt).cast<std::string>());
}

py::object relu_forward(py::handle x_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "");
  DeviceArray y = new_output(x.shape());
  cuda::relu_forward(mp<float>(y), cp<float>(x), x.size());
  return out(std::move(y));
}

py::object relu_backward(py::handle dy_obj, py::handle y_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "");
  const DeviceArray& y = float_dev(y_obj, "y", -1, "");
  check_shape_like(y, "y", dy, "dy");
  DeviceArray dx = new_output(dy.shape());
  cuda::relu_backward(mp<float>(dx), cp<float>(dy), cp<float>(y), dy.size());
  return out(std::move(dx));
}

py::object dropout_forward(py::handle x_obj, py::handle ratio_obj, py::handle seed_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", -1, "");
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  DeviceArray y = new_output(x.shape());
  cuda::dropout_forward(mp<float>(y), cp<float>(x), x.size(), ratio, seed);
  return out(std::move(y));
}

py::object dropout_backward(py::handle dy_obj, py::handle ratio_obj, py::handle seed_obj) {
  const DeviceArray& dy = float_dev(dy_obj, "dy", -1, "");
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  DeviceArray dx = new_output(dy.shape());
  cuda::dropout_backward(mp<float>(dx), cp<float>(dy), dy.size(), ratio, seed);
  return out(std::move(dx));
}

py::object dropout_mask(py::handle shape_obj, py::handle ratio_obj, py::handle seed_obj,
                        py::handle dtype_obj) {
  auto shape = shape_arg(shape_obj);
  const double ratio = ratio_arg(ratio_obj);
  const std::uint64_t seed = seed_arg(seed_obj);
  check_mask_dtype(dtype_obj);
  DeviceArray mask = new_output(std::move(shape));
  cuda::dropout_mask(mp<float>(mask), mask.size(), ratio, seed);
  return out(std::move(mask));
}

// ---- optimizers -----------------------------------------------------------------------------

const DeviceArray& like_param(py::handle obj, const char* name, const DeviceArray& param) {
  const DeviceArray& a = float_dev(obj, name, -1, "");
  check_shape_like(a, name, param, "param");
  return a;
}

void check_disjoint(const DeviceArray& a, const char* a_name, const DeviceArray& b,
                    const char* b_name) {
  bind::check_disjoint(a.raw(), a.nbytes(), a_name, b.raw(), b.nbytes(), b_name);
}

void sgd_update(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj,
                py::handle lr_obj, py::handle momentum_obj, py::handle nesterov_obj,
                py::handle weight_decay_obj) {
  const DeviceArray& param = float_dev(param_obj, "param", -1, "");
  const DeviceArray& grad = like_param(grad_obj, "grad", param);
  // Each thread reads grad while others write the state: with slices (views) of one buffer a
  // partial overlap would be a race, so every written array must be apart from grad.
  check_disjoint(param, "param", grad, "grad");
  const double lr = non_negative_arg(lr_obj, "lr");
  const double momentum = non_negative_arg(momentum_obj, "momentum");
  const bool nesterov = bool_arg(nesterov_obj, "nesterov");
  const double weight_decay = non_negative_arg(weight_decay_obj, "weight_decay");
  if (nesterov && momentum == 0)
    throw py::value_error("nesterov=True needs momentum > 0; got momentum 0");
  float* velocity = nullptr;
  if (!velocity_obj.is_none()) {
    const DeviceArray& v = like_param(velocity_obj, "velocity", param);
    check_disjoint(v, "velocity", param, "param");
    check_disjoint(v, "velocity", grad, "grad");
    velocity = mp<float>(v);
  } else if (momentum != 0) {
    throw py::value_error("velocity must be a device array of param's shape when momentum != 0 "
                          "(zeros on the first step); got None with momentum " +
                          num_str(momentum));
  }
  cuda::sgd_update(mp<float>(param), momentum != 0 ? velocity : nullptr, cp<float>(grad),
                   param.size(), lr, momentum, nesterov, weight_decay);
}

void adam_update(py::handle param_obj, py::handle grad_obj, py::handle m_obj, py::handle v_obj,
                 py::handle step_obj, py::handle lr_obj, py::handle beta1_obj,
                 py::handle beta2_obj, py::handle eps_obj, py::handle weight_decay_obj) {
  const DeviceArray& param = float_dev(param_obj, "param", -1, "");
  const DeviceArray& grad = like_param(grad_obj, "grad", param);
  const DeviceArray& m = like_param(m_obj, "m", param);
  const DeviceArray& v = like_param(v_obj, "v", param);
  check_disjoint(m, "m", param, "param");
  check_disjoint(v, "v", param, "param");
  check_disjoint(v, "v", m, "m");
  check_disjoint(param, "param", grad, "grad");
  check_disjoint(m, "m", grad, "grad");
  check_disjoint(v, "v", grad, "grad");
  const index_t step = step_arg(step_obj);
  const double lr = non_negative_arg(lr_obj, "lr");
  const double beta1 = beta_arg(beta1_obj, "beta1");
  const double beta2 = beta_arg(beta2_obj, "beta2");
  const double eps = real_arg(eps_obj, "eps");
  if (!(eps > 0)) throw py::value_error("eps must be > 0; got " + num_str(eps));
  const double weight_decay = non_negative_arg(weight_decay_obj, "weight_decay");
  cuda::adam_update(mp<float>(param), mp<float>(m), mp<float>(v), cp<float>(grad), param.size(),
                    lr, beta1, beta2, eps, weight_decay, step);
}

// ---- the training loop's helpers ------------------------------------------------------------

// Rows data[indices] of a device-resident dataset (float32 images or int64/float32 labels).
// indices: a 1-D int64 device array, or a 1-D integer numpy array (uploaded; checked on the host
// first). An index outside [0, len(data)) is a ValueError naming indices.
py::object gather_batch(py::handle data_obj, py::handle idx_obj) {
  const DeviceArray& data = device_arg(data_obj, "data");
  if (data.dtype() == DevType::f64)
    throw py::type_error("data must have dtype float32 or int64 (the GPU kernels take float32 "
                         "only); got float64");
  if (data.ndim() < 1)
    throw py::value_error("data must have at least 1 dimension (rows, ...); got shape " +
                          shape_str(data));
  const index_t rows_in = data.dim(0);
  index_t row = 1;  // elements per row
  for (int i = 1; i < data.ndim(); ++i) row *= data.dim(i);
  std::optional<DeviceArray> uploaded;
  const DeviceArray* idx = nullptr;
  if (py::isinstance<py::array>(idx_obj)) {
    auto host = int_array(idx_obj, "indices", 1, "(B,)");
    auto i64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(host);
    const std::int64_t* p = i64.data();
    for (py::ssize_t i = 0; i < i64.size(); ++i)
      if (p[i] < 0 || p[i] >= rows_in)
        throw py::value_error("indices holds " + std::to_string(p[i]) + " at position " +
                              std::to_string(i) + ", outside [0, " + std::to_string(rows_in) +
                              ") (data's rows)");
    uploaded.emplace(std::vector<index_t>{static_cast<index_t>(i64.size())}, DevType::i64);
    uploaded->copy_from_host(p, static_cast<std::size_t>(i64.nbytes()));
    idx = &*uploaded;
  } else {
    idx = &int64_dev(idx_obj, "indices", 1, "(B,)");
  }
  std::vector<index_t> shape = data.shape();
  shape[0] = idx->dim(0);
  DeviceArray batch = new_output(shape, data.dtype());
  const index_t bad =
      cuda::gather_rows(batch.raw(), data.raw(), cp<std::int64_t>(*idx), idx->dim(0), rows_in,
                        row, static_cast<int>(cuda::dtype_size(data.dtype())));
  if (bad >= 0) {  // the error path: fetch the one index, to say which it was
    std::int64_t value = 0;
    idx->read_elements(bad, 1, &value);
    throw py::value_error(text::cat("indices holds ", value, " at position ", bad, ", outside [0, ",
                                    rows_in, ") (data's rows)"));
  }
  return out(std::move(batch));
}

py::object argmax(py::handle x_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 2, "(N, C)");
  check_positive(x.dim(1), "x.shape[1] (the classes C)");
  DeviceArray idx = new_output({x.dim(0)}, DevType::i64);
  cuda::argmax_rows(mp<std::int64_t>(idx), cp<float>(x), x.dim(0), x.dim(1));
  return out(std::move(idx));
}

// Rows of z whose argmax is the target: t (N,) int64 labels or (N, C) float32 one-hot rows.
py::object accuracy_count(py::handle z_obj, py::handle t_obj) {
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  DeviceArray count = new_output({}, DevType::i64);
  cuda::accuracy_count(mp<std::int64_t>(count), cp<float>(z),
                       t.is_labels ? cp<std::int64_t>(*t.t) : nullptr,
                       t.is_labels ? nullptr : cp<float>(*t.t), z.dim(0), z.dim(1));
  return out(std::move(count));
}

}  // namespace

void bind_cuda_kernels(py::module_& m) {
  m.def("_set_poison_outputs", &set_poison_outputs, py::arg("on"),
        "Tests: fill every output of the CUDA kernels with NaN (or the lowest int64) first.");

  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("relu"));
  m.def("conv2d_backward", &conv2d_backward, py::arg("x"), py::arg("w"), py::arg("dy"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("need_dx"),
        py::arg("need_db"), py::arg("relu_y"));
  m.def("conv2d_scratch_bytes", &conv2d_scratch_bytes, py::arg("x"), py::arg("w"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"));

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

  m.def("softmax_cross_entropy_forward", &softmax_ce_forward, py::arg("z"), py::arg("t"));
  m.def("softmax_cross_entropy_backward", &softmax_ce_backward, py::arg("z"), py::arg("t"),
        py::arg("dloss") = 1.0);

  m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("dense_backward", &dense_backward, py::arg("x"), py::arg("w"), py::arg("dy"),
        py::arg("need_dx") = true, py::arg("need_db") = true);
  m.def("bias_add", &bias_add, py::arg("x"), py::arg("b"));
  m.def("bias_grad", &bias_grad, py::arg("dy"));

  m.def("relu_forward", &relu_forward, py::arg("x"));
  m.def("relu_backward", &relu_backward, py::arg("dy"), py::arg("y"));
  m.def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_backward", &dropout_backward, py::arg("dy"), py::arg("ratio"), py::arg("seed"));
  m.def("dropout_mask", &dropout_mask, py::arg("shape"), py::arg("ratio"), py::arg("seed"),
        py::arg("dtype"));

  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"));
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay"));

  m.def("gather_batch", &gather_batch, py::arg("data"), py::arg("indices"),
        "data[indices] on the device: a batch from a device-resident dataset.");
  m.def("argmax", &argmax, py::arg("x"), "Per-row argmax of x (N, C) as int64 (N,).");
  m.def("accuracy_count", &accuracy_count, py::arg("z"), py::arg("t"),
        "0-d int64 device array: rows of z whose argmax is the label (or t's row argmax).");
}

}  // namespace fastconv::bind
