// Bindings for the in-place parameter updates: SGD (momentum, Nesterov, weight decay) and Adam,
// one parameter a call or many (the GPU twin: cuda_optim.cpp). Their scalars are checked in
// args.h, the lists of the multi-tensor calls in optim_lists.h.
#include <cmath>
#include <string>
#include <vector>

#include "cpu/optim.h"
#include "fastconv/bias_correction.h"
#include "python/args.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/optim_lists.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

// A state or gradient array that must match param in shape and dtype.
py::array like_param(py::handle obj, const char* name, const py::array& param, bool inout,
                     const char* param_name = "param") {
  py::array a = inout ? inout_array(obj, name, -1, "") : float_array(obj, name, -1, "");
  check_same_dtype(a, name, param, param_name);
  check_shape_like(shape_of(a), name, shape_of(param), param_name);
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

// The arrays of entry i of a multi-tensor call: params[i] (of params[0]'s dtype), grads[i] and
// the state lists' entries, each like params[i]; their spans go to `spans`.
std::vector<py::array> entry_arrays(const std::vector<const std::vector<py::object>*>& lists,
                                    const std::vector<const char*>& names, std::size_t i,
                                    const py::array* first, Spans& spans) {
  const std::string pn = entry_name(names[0], i);
  std::vector<py::array> out{inout_array((*lists[0])[i], pn.c_str(), -1, "")};
  if (first) check_same_dtype(out[0], pn.c_str(), *first, "params[0]");
  for (std::size_t k = 1; k < lists.size(); ++k)
    out.push_back(like_param((*lists[k])[i], entry_name(names[k], i).c_str(), out[0], k > 1,
                             pn.c_str()));
  for (std::size_t k = 0; k < out.size(); ++k)
    spans.add(out[k].data(), static_cast<std::size_t>(out[k].nbytes()), names[k], i,
              k == 0 ? Spans::kParam : k == 1 ? Spans::kGrad : Spans::kState);
  return out;
}

// All entries' arrays, checked (grads[i] may be params[i] itself, as in sgd_update).
std::vector<std::vector<py::array>> all_entries(
    const std::vector<const std::vector<py::object>*>& lists,
    const std::vector<const char*>& names) {
  std::vector<std::vector<py::array>> entries;
  Spans spans;
  for (std::size_t i = 0; i < lists[0]->size(); ++i)
    entries.push_back(
        entry_arrays(lists, names, i, entries.empty() ? nullptr : &entries[0][0], spans));
  spans.check(/*grad_may_be_own_param=*/true);
  return entries;
}

void sgd_update_multi(py::handle params_obj, py::handle grads_obj, py::handle velocities_obj,
                      py::handle lr_obj, py::handle momentum_obj, py::handle nesterov_obj,
                      py::handle weight_decays_obj) {
  const UpdateLists l =
      update_lists(params_obj, grads_obj, {{velocities_obj, "velocities", /*may_be_none=*/true}});
  const SgdArgs a = sgd_args(lr_obj, momentum_obj, nesterov_obj, py::float_(0.0));
  if (velocities_obj.is_none() && a.momentum != 0)
    throw py::value_error("velocities must be a list of arrays like params when momentum != 0 "
                          "(momentum " + num_str(a.momentum) + "; start each at "
                          "numpy.zeros_like(params[i])); got None");
  const std::vector<double> decays = weight_decays_arg(weight_decays_obj, l.count());
  std::vector<std::vector<py::array>> e = all_entries(l.pointers(), l.names);
  if (e.empty()) return;
  with_float(dtype_of(e[0][0]), [&](auto t) {
    using T = decltype(t);
    std::vector<cpu::SgdTensor<T>> tensors;
    for (std::size_t i = 0; i < e.size(); ++i)
      tensors.push_back({ptr<T>(e[i][0]), a.momentum != 0 ? ptr<T>(e[i][2]) : nullptr,
                         cptr<T>(e[i][1]), static_cast<index_t>(e[i][0].size()), decays[i]});
    py::gil_scoped_release nogil;
    cpu::sgd_update_multi(tensors.data(), static_cast<index_t>(tensors.size()), a.lr, a.momentum,
                          a.nesterov);
  });
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
  std::vector<std::vector<py::array>> e = all_entries(l.pointers(), l.names);
  // Corrections in device memory serve a CUDA graph's replays; the CPU forms them from steps.
  if (!corrections_obj.is_none())
    throw py::type_error("corrections must be None on the CPU (device-memory bias corrections "
                         "are for the GPU); got " + type_name(corrections_obj));
  if (e.empty()) return;
  with_float(dtype_of(e[0][0]), [&](auto t) {
    using T = decltype(t);
    std::vector<cpu::AdamTensor<T>> tensors;
    for (std::size_t i = 0; i < e.size(); ++i)
      tensors.push_back({ptr<T>(e[i][0]), ptr<T>(e[i][2]), ptr<T>(e[i][3]), cptr<T>(e[i][1]),
                         static_cast<index_t>(e[i][0].size()), decays[i], steps[i]});
    py::gil_scoped_release nogil;
    cpu::adam_update_multi(tensors.data(), static_cast<index_t>(tensors.size()), a.lr, a.beta1,
                           a.beta2, a.eps);
  });
}

// The float32 (n, 2) rows (1 - beta1**step, 1 - beta2**step) that the GPU's adam_update_multi
// forms on the host for `steps`, bit for bit (one shared definition): what a CUDA-graph replay
// reads through adam_update_multi's `corrections`.
py::array adam_bias_corrections(py::handle steps_obj, py::handle beta1_obj,
                                py::handle beta2_obj) {
  if (!py::isinstance<py::list>(steps_obj) && !py::isinstance<py::tuple>(steps_obj))
    throw py::type_error("steps must be a list or tuple of ints; got " + type_name(steps_obj));
  const std::vector<index_t> steps = steps_arg(steps_obj, py::len(steps_obj));
  const AdamArgs a = adam_args(py::int_(1), py::float_(0.0), beta1_obj, beta2_obj,
                               py::float_(1.0), py::float_(0.0));
  py::array_t<float> out({static_cast<py::ssize_t>(steps.size()), py::ssize_t(2)});
  float* o = out.mutable_data();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    o[2 * i] = bias_correction_f32(a.beta1, steps[i]);
    o[2 * i + 1] = bias_correction_f32(a.beta2, steps[i]);
  }
  return out;
}

}  // namespace

void bind_optim(py::module_& m) {
  def_optim(m, &sgd_update, &adam_update, &sgd_update_multi, &adam_update_multi);
  m.def("adam_bias_corrections", &adam_bias_corrections, py::arg("steps"), py::arg("beta1"),
        py::arg("beta2"));
}

}  // namespace fastconv::bind
