// Bindings for softmax cross-entropy. Targets come as (N, C) floats of z's dtype or (N,) integer
// labels; the form is chosen by t's rank.
#include <cstdint>
#include <string>

#include "cpu/softmax_ce.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"

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
  check_positive(z.shape(0), "z.shape[0] (the batch N)");
  check_positive(z.shape(1), "z.shape[1] (the classes C)");
  return z;
}

Targets targets(py::handle t_obj, const py::array& z) {
  const index_t n = z.shape(0), c = z.shape(1);
  Targets out;
  if (py::isinstance<py::array>(t_obj) && py::reinterpret_borrow<py::array>(t_obj).ndim() == 2) {
    out.dense = float_array(t_obj, "t", 2, "(N, C)");
    check_same_dtype(out.dense, "t", z, "z");
    check_shape_like(out.dense, "t", z, "z");
    return out;
  }
  if (py::isinstance<py::array>(t_obj) && py::reinterpret_borrow<py::array>(t_obj).ndim() != 1)
    throw py::value_error("t must be (N, C) target weights or (N,) integer labels; got shape " +
                          shape_str(py::reinterpret_borrow<py::array>(t_obj)));
  auto raw = int_array(t_obj, "t", 1, "(N,) integer labels, or (N, C) target weights");
  check_dim(raw, "t", 0, n, "z's batch N");
  out.labels = Labels::ensure(raw);  // any integer width -> int64 (a no-op for int64)
  out.is_labels = true;
  const std::int64_t* l = out.labels.data();
  for (index_t i = 0; i < n; ++i)
    if (l[i] < 0 || l[i] >= c)
      throw py::value_error("t holds label " + std::to_string(l[i]) + " at row " +
                            std::to_string(i) + ", outside [0, " + std::to_string(c) +
                            ") (z's classes C)");
  return out;
}

py::array softmax_ce_forward(py::handle z_obj, py::handle t_obj) {
  auto z = logits(z_obj);
  auto t = targets(t_obj, z);
  const index_t n = z.shape(0), c = z.shape(1);
  return with_float(dtype_of(z), [&](auto tag) -> py::array {
    using T = decltype(tag);
    py::array loss = new_output<T>({});
    {
      py::gil_scoped_release nogil;
      if (t.is_labels)
        cpu::softmax_ce_forward(ptr<T>(loss), cptr<T>(z), t.labels.data(), n, c);
      else
        cpu::softmax_ce_forward(ptr<T>(loss), cptr<T>(z), cptr<T>(t.dense), n, c);
    }
    return loss;
  });
}

py::array softmax_ce_backward(py::handle z_obj, py::handle t_obj, double dloss) {
  auto z = logits(z_obj);
  auto t = targets(t_obj, z);
  const index_t n = z.shape(0), c = z.shape(1);
  return with_float(dtype_of(z), [&](auto tag) -> py::array {
    using T = decltype(tag);
    py::array dz = new_output<T>(shape_of(z));
    {
      py::gil_scoped_release nogil;
      if (t.is_labels)
        cpu::softmax_ce_backward(ptr<T>(dz), cptr<T>(z), t.labels.data(), T(dloss), n, c);
      else
        cpu::softmax_ce_backward(ptr<T>(dz), cptr<T>(z), cptr<T>(t.dense), T(dloss), n, c);
    }
    return dz;
  });
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def("softmax_cross_entropy_forward", &softmax_ce_forward, py::arg("z"), py::arg("t"));
  m.def("softmax_cross_entropy_backward", &softmax_ce_backward, py::arg("z"), py::arg("t"),
        py::arg("dloss") = 1.0);
}

}  // namespace fastconv::bind
