// Bindings of SGD and Adam on the GPU, one parameter a call or many (the CPU twin:
// cpu_optim.cpp). Their scalars are checked in args.h; device arrays: cuda_args.h; the lists of
// the multi-tensor calls: optim_lists.h.
#include <string>
#include <vector>

#include "cuda/optim.h"
#include "fastconv/text.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/optim_lists.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

const DeviceArray& like_param(py::handle obj, const char* name, const DeviceArray& param,
                              const char* param_name = "param") {
  const DeviceArray& a = float_dev(obj, name, -1, "");
  check_shape_like(a.shape(), name, param.shape(), param_name);
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

// All entries' device arrays, checked: entry i is params[i], grads[i], then the state lists'
// entries, each like params[i]. Every written array must be apart from every gradient, grads[i]
// included (threads read grad while others write), as in sgd_update.
std::vector<std::vector<const DeviceArray*>> all_entries(
    const std::vector<const std::vector<py::object>*>& lists,
    const std::vector<const char*>& names) {
  std::vector<std::vector<const DeviceArray*>> entries;
  Spans spans;
  for (std::size_t i = 0; i < lists[0]->size(); ++i) {
    const std::string pn = entry_name(names[0], i);
    std::vector<const DeviceArray*> e{&float_dev((*lists[0])[i], pn.c_str(), -1, "")};
    for (std::size_t k = 1; k < lists.size(); ++k)
      e.push_back(&like_param((*lists[k])[i], entry_name(names[k], i).c_str(), *e[0],
                              pn.c_str()));
    for (std::size_t k = 0; k < e.size(); ++k)
      spans.add(e[k]->raw(), e[k]->nbytes(), names[k], i,
                k == 0 ? Spans::kParam : k == 1 ? Spans::kGrad : Spans::kState);
    entries.push_back(std::move(e));
  }
  spans.check(/*grad_may_be_own_param=*/false);
  return entries;
}

void sgd_update_multi(py::handle params_obj, py::handle grads_obj, py::handle velocities_obj,
                      py::handle lr_obj, py::handle momentum_obj, py::handle nesterov_obj,
                      py::handle weight_decays_obj) {
  const UpdateLists l =
      update_lists(params_obj, grads_obj, {{velocities_obj, "velocities", /*may_be_none=*/true}});
  const SgdArgs a = sgd_args(lr_obj, momentum_obj, nesterov_obj, py::float_(0.0));
  if (velocities_obj.is_none() && a.momentum != 0)
    throw py::value_error("velocities must be a list of device arrays like params when "
                          "momentum != 0 (zeros on the first step); got None with momentum " +
                          num_str(a.momentum));
  const std::vector<double> decays = weight_decays_arg(weight_decays_obj, l.count());
  const auto e = all_entries(l.pointers(), l.names);
  std::vector<cuda::SgdTensor> tensors;
  for (std::size_t i = 0; i < e.size(); ++i)
    tensors.push_back({mp<float>(*e[i][0]), a.momentum != 0 ? mp<float>(*e[i][2]) : nullptr,
                       cp<float>(*e[i][1]), e[i][0]->size(), decays[i]});
  cuda::sgd_update_multi(tensors.data(), tensors.size(), a.lr, a.momentum, a.nesterov);
}

// None, or one float32 row (1 - beta1**step, 1 - beta2**step) per parameter in device memory,
// read by the kernel when it runs (a CUDA graph's replays follow what the host writes there).
// The kernel only reads it, while it writes every param, m and v: it must be apart from them.
const float* corrections_arg(py::handle obj,
                             const std::vector<std::vector<const DeviceArray*>>& e) {
  if (obj.is_none()) return nullptr;
  const auto n = static_cast<index_t>(e.size());
  if (!py::isinstance<DeviceArray>(obj))
    throw py::type_error(text::cat("corrections must be None or a float32 device array of shape (",
                                   n, ", 2); got ", type_name(obj)));
  const DeviceArray& c = obj.cast<const DeviceArray&>();
  if (c.dtype() != DType::f32)
    throw py::type_error(std::string("corrections must have dtype float32; got ") +
                         dtype_name(c.dtype()));
  if (c.ndim() != 2 || c.dim(0) != n || c.dim(1) != 2)
    throw py::value_error(text::cat("corrections must have shape (", n,
                                    ", 2) (one row (1 - beta1**step, 1 - beta2**step) per "
                                    "parameter); got ", shape_str(c)));
  for (std::size_t i = 0; i < e.size(); ++i)
    for (std::size_t k : {0, 2, 3})
      bind::check_disjoint(c.raw(), c.nbytes(), "corrections", e[i][k]->raw(), e[i][k]->nbytes(),
                           entry_name(k == 0 ? "params" : k == 2 ? "ms" : "vs", i).c_str());
  return cp<float>(c);
}

void adam_update_multi(py::handle params_obj, py::handle grads_obj, py::handle ms_obj,
                       py::handle vs_obj, py::handle steps_obj, py::handle lr_obj,
                       py::handle beta1_obj, py::handle beta2_obj, py::handle eps_obj,
                       py::handle weight_decays_obj, py::handle corrections_obj) {
  const UpdateLists l =
      update_lists(params_obj, grads_obj, {{ms_obj, "ms", false}, {vs_obj, "vs", false}});
  const std::vector<index_t> steps = steps_arg(steps_obj, l.count());
  const AdamArgs a = adam_args(py::int_(1), lr_obj, beta1_obj, beta2_obj, eps_obj,
                               py::float_(0.0));
  const std::vector<double> decays = weight_decays_arg(weight_decays_obj, l.count());
  const auto e = all_entries(l.pointers(), l.names);
  const float* corrections = corrections_arg(corrections_obj, e);
  std::vector<cuda::AdamTensor> tensors;
  for (std::size_t i = 0; i < e.size(); ++i)
    tensors.push_back({mp<float>(*e[i][0]), mp<float>(*e[i][2]), mp<float>(*e[i][3]),
                       cp<float>(*e[i][1]), e[i][0]->size(), decays[i], steps[i]});
  cuda::adam_update_multi(tensors.data(), tensors.size(), a.lr, a.beta1, a.beta2, a.eps,
                          corrections);
}

}  // namespace

void bind_cuda_optim(py::module_& m) {
  def_optim(m, &sgd_update, &adam_update, &sgd_update_multi, &adam_update_multi);
}

}  // namespace fastconv::bind
