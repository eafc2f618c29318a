// Bindings for the in-place parameter updates: SGD (momentum, Nesterov, weight decay) and Adam.
#include <cmath>
#include <string>

#include "cpu/optim.h"
#include "python/args.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"

namespace fastconv::bind {
namespace {

// A state or gradient array that must match param in shape and dtype.
py::array like_param(py::handle obj, const char* name, const py::array& param, bool inout) {
  py::array a = inout ? inout_array(obj, name, -1, "") : float_array(obj, name, -1, "");
  check_same_dtype(a, name, param, "param");
  check_shape_like(a, name, param, "param");
  return a;
}

void check_disjoint(const py::array& a, const char* a_name, const py::array& b,
                    const char* b_name) {
  bind::check_disjoint(a.data(), static_cast<std::size_t>(a.nbytes()), a_name, b.data(),
                       static_cast<std::size_t>(b.nbytes()), b_name);
}

// grad may be param itself (the same buffer: each element reads its gradient before its update
// writes it, so p -= lr * p is well defined), but not a shifted view of it, whose elements another
// element's update would already have changed. Shapes and dtypes already match here.
void check_grad_vs_param(const py::array& grad, const py::array& param) {
  if (grad.data() != param.data()) check_disjoint(grad, "grad", param, "param");
}

void sgd_update(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj,
                py::handle lr_obj, py::handle momentum_obj, py::handle nesterov_obj,
                py::handle weight_decay_obj) {
  py::array param = inout_array(param_obj, "param", -1, "");
  py::array grad = like_param(grad_obj, "grad", param, false);
  double lr = non_negative_arg(lr_obj, "lr");
  double momentum = non_negative_arg(momentum_obj, "momentum");
  bool nesterov = bool_arg(nesterov_obj, "nesterov");
  double weight_decay = non_negative_arg(weight_decay_obj, "weight_decay");
  if (nesterov && momentum == 0)
    throw py::value_error("nesterov=True needs momentum > 0; got momentum 0");
  check_grad_vs_param(grad, param);
  py::array velocity;
  if (!velocity_obj.is_none()) {
    velocity = like_param(velocity_obj, "velocity", param, true);
    check_disjoint(velocity, "velocity", param, "param");
    check_disjoint(velocity, "velocity", grad, "grad");
  } else if (momentum != 0) {
    throw py::value_error("velocity must be an array like param when momentum != 0 (momentum " +
                          num_str(momentum) +
                          "; start it at numpy.zeros_like(param)); got None");
  }
  with_float(dtype_of(param), [&](auto t) {
    using T = decltype(t);
    T* vel = momentum != 0 ? ptr<T>(velocity) : nullptr;
    {
      py::gil_scoped_release nogil;
      cpu::sgd_update(ptr<T>(param), vel, cptr<T>(grad), param.size(), lr, momentum, nesterov,
                      weight_decay);
    }
  });
}

void adam_update(py::handle param_obj, py::handle grad_obj, py::handle m_obj, py::handle v_obj,
                 py::handle step_obj, py::handle lr_obj, py::handle beta1_obj,
                 py::handle beta2_obj, py::handle eps_obj, py::handle weight_decay_obj) {
  py::array param = inout_array(param_obj, "param", -1, "");
  py::array grad = like_param(grad_obj, "grad", param, false);
  py::array m = like_param(m_obj, "m", param, true);
  py::array v = like_param(v_obj, "v", param, true);
  check_grad_vs_param(grad, param);
  check_disjoint(m, "m", param, "param");
  check_disjoint(m, "m", grad, "grad");
  check_disjoint(v, "v", param, "param");
  check_disjoint(v, "v", grad, "grad");
  check_disjoint(v, "v", m, "m");
  index_t step = step_arg(step_obj);
  double lr = non_negative_arg(lr_obj, "lr");
  double beta1 = beta_arg(beta1_obj, "beta1");
  double beta2 = beta_arg(beta2_obj, "beta2");
  double eps = real_arg(eps_obj, "eps");
  if (!(eps > 0)) throw py::value_error("eps must be > 0; got " + num_str(eps));
  double weight_decay = non_negative_arg(weight_decay_obj, "weight_decay");
  with_float(dtype_of(param), [&](auto t) {
    using T = decltype(t);
    {
      py::gil_scoped_release nogil;
      cpu::adam_update(ptr<T>(param), ptr<T>(m), ptr<T>(v), cptr<T>(grad), param.size(), lr,
                       beta1, beta2, eps, weight_decay, step);
    }
  });
}

}  // namespace

void bind_optim(pybind11::module_& m) {
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"));
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay"));
}

}  // namespace fastconv::bind
