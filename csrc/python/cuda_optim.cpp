// Bindings of SGD and Adam on the GPU (the CPU twin: cpu_optim.cpp). Their scalars are checked
// in args.h; device arrays: cuda_args.h.
#include "cuda/optim.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

const DeviceArray& like_param(py::handle obj, const char* name, const DeviceArray& param) {
  const DeviceArray& a = float_dev(obj, name, -1, "");
  check_shape_like(a.shape(), name, param.shape(), "param");
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
  const SgdArgs a = sgd_args(lr_obj, momentum_obj, nesterov_obj, weight_decay_obj);
  float* velocity = nullptr;
  if (!velocity_obj.is_none()) {
    const DeviceArray& v = like_param(velocity_obj, "velocity", param);
    check_disjoint(v, "velocity", param, "param");
    check_disjoint(v, "velocity", grad, "grad");
    velocity = mp<float>(v);
  } else if (a.momentum != 0) {
    throw py::value_error("velocity must be a device array of param's shape when momentum != 0 "
                          "(zeros on the first step); got None with momentum " +
                          num_str(a.momentum));
  }
  cuda::sgd_update(mp<float>(param), a.momentum != 0 ? velocity : nullptr, cp<float>(grad),
                   param.size(), a.lr, a.momentum, a.nesterov, a.weight_decay);
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
  const AdamArgs a =
      adam_args(step_obj, lr_obj, beta1_obj, beta2_obj, eps_obj, weight_decay_obj);
  cuda::adam_update(mp<float>(param), mp<float>(m), mp<float>(v), cp<float>(grad), param.size(),
                    a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.step);
}

}  // namespace

void bind_cuda_optim(py::module_& m) { def_optim(m, &sgd_update, &adam_update); }

}  // namespace fastconv::bind
