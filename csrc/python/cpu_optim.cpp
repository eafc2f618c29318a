// Bindings for the in-place parameter updates: SGD (momentum, Nesterov, weight decay) and Adam
// (the GPU twin: cuda_optim.cpp). Their scalars are checked in args.h.
#include <cmath>
#include <string>

#include "cpu/optim.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

// A state or gradient array that must match param in shape and dtype.
py::array like_param(py::handle obj, const char* name, const py::array& param, bool inout) {
  py::array a = inout ? inout_array(obj, name, -1, "") : float_array(obj, name, -1, "");
  check_same_dtype(a, name, param, "param");
  check_shape_like(shape_of(a), name, shape_of(param), "param");
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
  const SgdArgs a = sgd_args(lr_obj, momentum_obj, nesterov_obj, weight_decay_obj);
  check_grad_vs_param(grad, param);
  py::array velocity;
  if (!velocity_obj.is_none()) {
    velocity = like_param(velocity_obj, "velocity", param, true);
    check_disjoint(velocity, "velocity", param, "param");
    check_disjoint(velocity, "velocity", grad, "grad");
  } else if (a.momentum != 0) {
    throw py::value_error("velocity must be an array like param when momentum != 0 (momentum " +
                          num_str(a.momentum) +
                          "; start it at numpy.zeros_like(param)); got None");
  }
  with_float(dtype_of(param), [&](auto t) {
    using T = decltype(t);
    T* vel = a.momentum != 0 ? ptr<T>(velocity) : nullptr;
    {
      py::gil_scoped_release nogil;
      cpu::sgd_update(ptr<T>(param), vel, cptr<T>(grad), param.size(), a.lr, a.momentum,
                      a.nesterov, a.weight_decay);
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
  const AdamArgs a =
      adam_args(step_obj, lr_obj, beta1_obj, beta2_obj, eps_obj, weight_decay_obj);
  with_float(dtype_of(param), [&](auto t) {
    using T = decltype(t);
    {
      py::gil_scoped_release nogil;
      cpu::adam_update(ptr<T>(param), ptr<T>(m), ptr<T>(v), cptr<T>(grad), param.size(), a.lr,
                       a.beta1, a.beta2, a.eps, a.weight_decay, a.step);
    }
  });
}

}  // namespace

void bind_optim(py::module_& m) { def_optim(m, &sgd_update, &adam_update); }

}  // namespace fastconv::bind
