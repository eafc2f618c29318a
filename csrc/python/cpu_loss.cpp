// Bindings for softmax cross-entropy (the GPU twin: cuda_loss.cpp). Targets come as (N, C) floats
// of z's dtype or (N,) integer labels; the form is chosen by t's rank.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "cpu/loss.h"
#include "fastconv/text.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

struct Targets {
  py::array dense;  // (N, C) weights, or
  Labels labels;    // (N,) int64 labels in [0, C)
  bool is_labels = false;
};

py::array logits(py::handle z_obj) {
  auto z = float_array(z_obj, "z", 2, "(N, C)");
  check_logits(shape_of(z));
  return z;
}

// Soft targets weigh each class's -log softmax; a negative or non-finite weight would give a
// negative or NaN loss with no error (weights need not sum to 1: any non-negative row is a valid
// weighting).
template <typename T>
void check_weights(const py::array& t, index_t n, index_t c) {
  const T* w = cptr<T>(t);
  for (index_t i = 0; i < n * c; ++i)
    if (!(w[i] >= 0) || !std::isfinite(w[i]))
      throw py::value_error(text::cat("t must hold finite target weights >= 0; got ",
                                      float_str(w[i]), " at row ", i / c, ", column ", i % c));
}

// Labels of any integer width become int64 for the kernel. Unsigned ones are range-checked
// first, so that 2**63 + 1 is reported as itself rather than as the negative int64 it wraps to.
Labels labels(const py::array& raw, index_t n, index_t c) {
  if (raw.dtype().kind() == 'u') {
    using Unsigned = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;
    auto u = Unsigned::ensure(raw);
    const std::uint64_t* l = u.data();
    for (index_t i = 0; i < n; ++i)
      if (l[i] >= static_cast<std::uint64_t>(c))
        throw py::value_error(text::cat("t must hold labels in [0, ", c,
                                        ") (z's classes C); got label ", l[i], " at row ", i));
  }
  Labels out = Labels::ensure(raw);  // a no-op for int64
  const std::int64_t* l = out.data();
  for (index_t i = 0; i < n; ++i)
    if (l[i] < 0 || l[i] >= c)
      throw py::value_error(text::cat("t must hold labels in [0, ", c,
                                      ") (z's classes C); got label ", l[i], " at row ", i));
  return out;
}

Targets targets(py::handle t_obj, const py::array& z) {
  const index_t n = z.shape(0), c = z.shape(1);
  Targets out;
  if (t_obj.is_none() || !py::isinstance<py::array>(t_obj))
    throw py::type_error("t must be a numpy array of (N,) integer labels or (N, C) target "
                         "weights; got " +
                         (t_obj.is_none() ? std::string("None") : type_name(t_obj)));
  auto t = py::reinterpret_borrow<py::array>(t_obj);
  if (t.ndim() == 2) {
    out.dense = float_array(t, "t", 2, "(N, C)");
    check_same_dtype(out.dense, "t", z, "z");
    check_shape_like(shape_of(out.dense), "t", shape_of(z), "z");
    with_float(dtype_of(z), [&](auto tag) { check_weights<decltype(tag)>(out.dense, n, c); });
    return out;
  }
  if (t.ndim() != 1)
    throw py::value_error("t must be (N,) integer labels or (N, C) target weights; got shape " +
                          shape_str(t));
  if (t.dtype().kind() != 'i' && t.dtype().kind() != 'u')
    throw py::type_error("t must have an integer dtype as (N,) labels; got " +
                         py::str(t.dtype()).cast<std::string>());
  auto raw = int_array(t, "t", 1, "(N,)");
  check_dim(shape_of(raw), "t", 0, n, "z's batch N");
  out.labels = labels(raw, n, c);
  out.is_labels = true;
  return out;
}

py::array softmax_ce_forward(py::handle z_obj, py::handle t_obj) {
  auto z = logits(z_obj);
  auto t = targets(t_obj, z);
  const index_t n = z.shape(0), c = z.shape(1);
  return float_output(dtype_of(z), {}, [&](auto* loss) {
    if (t.is_labels)
      cpu::softmax_ce_forward(loss, cptr_like(loss, z), t.labels.data(), n, c);
    else
      cpu::softmax_ce_forward(loss, cptr_like(loss, z), cptr_like(loss, t.dense), n, c);
  });
}

py::array softmax_ce_backward(py::handle z_obj, py::handle t_obj, py::handle dloss_obj) {
  auto z = logits(z_obj);
  auto t = targets(t_obj, z);
  const double dloss = real_arg(dloss_obj, "dloss");
  const index_t n = z.shape(0), c = z.shape(1);
  return float_output(dtype_of(z), shape_of(z), [&](auto* dz) {
    const auto scale = static_cast<std::remove_pointer_t<decltype(dz)>>(dloss);
    if (t.is_labels)
      cpu::softmax_ce_backward(dz, cptr_like(dz, z), t.labels.data(), scale, n, c);
    else
      cpu::softmax_ce_backward(dz, cptr_like(dz, z), cptr_like(dz, t.dense), scale, n, c);
  });
}

// The CPU has no fused kernel: both passes, with the separate ops' bits (the targets checked once).
py::tuple softmax_ce_forward_backward(py::handle z_obj, py::handle t_obj, py::handle dloss_obj) {
  auto z = logits(z_obj);
  auto t = targets(t_obj, z);
  const double dloss = real_arg(dloss_obj, "dloss");
  const index_t n = z.shape(0), c = z.shape(1);
  py::array loss = float_output(dtype_of(z), {}, [&](auto* out) {
    if (t.is_labels)
      cpu::softmax_ce_forward(out, cptr_like(out, z), t.labels.data(), n, c);
    else
      cpu::softmax_ce_forward(out, cptr_like(out, z), cptr_like(out, t.dense), n, c);
  });
  py::array dz = float_output(dtype_of(z), shape_of(z), [&](auto* out) {
    const auto scale = static_cast<std::remove_pointer_t<decltype(out)>>(dloss);
    if (t.is_labels)
      cpu::softmax_ce_backward(out, cptr_like(out, z), t.labels.data(), scale, n, c);
    else
      cpu::softmax_ce_backward(out, cptr_like(out, z), cptr_like(out, t.dense), scale, n, c);
  });
  return py::make_tuple(loss, dz);
}

}  // namespace

void bind_loss(py::module_& m) {
  def_loss(m, &softmax_ce_forward, &softmax_ce_backward, &softmax_ce_forward_backward);
}

}  // namespace fastconv::bind
