// Bindings of softmax cross-entropy on the GPU (the CPU twin: cpu_loss.cpp).
// Device arrays, logits, targets and outputs: cuda_args.h.
#include <cstdint>
#include <utility>

#include "cuda/deferred_checks.h"
#include "cuda/loss.h"
#include "fastconv/text.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

// The kernels lower a ledger slot to the first row holding a label outside [0, C); the check is
// deferred to the next point where the host waits for the device (cuda/deferred_checks.h), and
// only then is the one label fetched, to say which it was, in the CPU binding's words.
unsigned long long* bad_label_slot(const DeviceArray& labels, index_t c) {
  return cuda::defer_check([labels, c](index_t row) {
    std::int64_t label = 0;
    labels.read_elements(row, 1, &label);
    return text::cat("t must hold labels in [0, ", c, ") (z's classes C); got label ", label,
                     " at row ", row);
  });
}

// Dense targets: the flat index i * C + j of the first weight that is negative or not finite.
unsigned long long* bad_weight_slot(const DeviceArray& t, index_t c) {
  return cuda::defer_check([t, c](index_t flat) {
    float w = 0.0f;
    t.read_elements(flat, 1, &w);
    return text::cat("t must hold finite target weights >= 0; got ", float_str(w), " at row ",
                     flat / c, ", column ", flat % c);
  });
}

py::object softmax_ce_forward(py::handle z_obj, py::handle t_obj) {
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  const index_t n = z.dim(0), c = z.dim(1);
  DeviceArray loss = new_output({});
  if (t.is_labels)
    cuda::softmax_ce_forward(mp<float>(loss), cp<float>(z), cp<std::int64_t>(*t.t), n, c,
                             bad_label_slot(*t.t, c));
  else
    cuda::softmax_ce_forward(mp<float>(loss), cp<float>(z), cp<float>(*t.t), n, c,
                             bad_weight_slot(*t.t, c));
  return out(std::move(loss));
}

py::object softmax_ce_backward(py::handle z_obj, py::handle t_obj, py::handle dloss_obj) {
  const double dloss = real_arg(dloss_obj, "dloss");
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  const index_t n = z.dim(0), c = z.dim(1);
  DeviceArray dz = new_output(z.shape());
  if (t.is_labels)
    cuda::softmax_ce_backward(mp<float>(dz), cp<float>(z), cp<std::int64_t>(*t.t), float(dloss), n,
                              c, bad_label_slot(*t.t, c));
  else
    cuda::softmax_ce_backward(mp<float>(dz), cp<float>(z), cp<float>(*t.t), float(dloss), n, c,
                              bad_weight_slot(*t.t, c));
  return out(std::move(dz));
}

py::object softmax_ce_forward_backward(py::handle z_obj, py::handle t_obj,
                                       py::handle dloss_obj) {
  const double dloss = real_arg(dloss_obj, "dloss");
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  const index_t n = z.dim(0), c = z.dim(1);
  DeviceArray loss = new_output({});
  DeviceArray dz = new_output(z.shape());
  if (t.is_labels)
    cuda::softmax_ce_forward_backward(mp<float>(loss), mp<float>(dz), cp<float>(z),
                                      cp<std::int64_t>(*t.t), float(dloss), n, c,
                                      bad_label_slot(*t.t, c));
  else
    cuda::softmax_ce_forward_backward(mp<float>(loss), mp<float>(dz), cp<float>(z),
                                      cp<float>(*t.t), float(dloss), n, c,
                                      bad_weight_slot(*t.t, c));
  return py::make_tuple(out(std::move(loss)), out(std::move(dz)));
}

}  // namespace

void bind_cuda_loss(py::module_& m) {
  def_loss(m, &softmax_ce_forward, &softmax_ce_backward, &softmax_ce_forward_backward);
}

}  // namespace fastconv::bind
