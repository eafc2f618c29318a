// Bindings of SGD and Adam on the GPU (the CPU twin: cpu_optim.cpp).
// Argument checks and outputs: cuda_args.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "cuda/optim.h"
#include "python/args.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/cuda_bindings.h"
#include "python/shapes.h"

namespace fastconv::bind {
namespace {

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

}  // namespace

void bind_cuda_optim(py::module_& m) {
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"));
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay"));
}

}  // namespace fastconv::bind
